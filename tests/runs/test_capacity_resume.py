"""AnnealedVAE and DIP-VAE runs killed (SIGKILL) mid-training, then rerun: they end as an
uninterrupted run, AnnealedVAE's capacity C continuing from the optimizer's step count."""

import csv
import signal

import keras
import numpy as np
import pytest

import vae_tf  # noqa: F401 (registers the model classes load_model reads)

from helpers import run_vae_tf

OPTIONS = {
    # 2,000 images in batches of 128: 16 steps an epoch, so C rises through all 3 epochs.
    "annealedvae": ["--capacity-max", "4", "--capacity-steps", "40"],
    "dipvae": ["--dip-type", "ii", "--dip-lambda-od", "5"],
}


def history(run_dir):
    with open(run_dir / "history.csv") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_killed_mid_run_then_rerun_ends_as_an_uninterrupted_run(kind, tiny_data, tmp_path):
    args = [*tiny_data, "--model", kind, *OPTIONS[kind], "--hidden-units", "32", "--latent-dim", "2",
            "--iw-samples", "2", "--batch-size", "128", "--epochs", "3", "--binarize", "dynamic",
            "--deterministic", "--limit", "2000", "--no-export", "--out", str(tmp_path)]
    status, err = run_vae_tf("train", *args, "--name", "reference")
    assert status == 0, err
    status, err = run_vae_tf("train", *args, "--name", "x", kill_at="checkpoint-write:2")
    assert status == -signal.SIGKILL, err
    status, err = run_vae_tf("train", *args, "--name", "x")
    assert status == 0, err
    assert "resuming x after epoch 1 of 3" in err
    reference = keras.saving.load_model(tmp_path / "reference" / "model.keras").get_weights()
    for a, b in zip(keras.saving.load_model(tmp_path / "x" / "model.keras").get_weights(), reference, strict=True):
        np.testing.assert_array_equal(a, b)
    assert history(tmp_path / "x") == history(tmp_path / "reference")
    if kind == "annealedvae":
        capacity = [float(row["capacity"]) for row in history(tmp_path / "x")]
        expected = [np.mean([min(4.0, 4.0 * t / 40) for t in range(16 * e, 16 * e + 16)]) for e in range(3)]
        np.testing.assert_allclose(capacity, expected, rtol=1e-6)
