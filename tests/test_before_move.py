"""Files written by the version before the restructuring (tests/fixtures/before_move, made
at commit 99defdb as its README says) still load, evaluate, encode, decode and sample."""

import json
import pathlib
import shutil

import keras
import numpy as np
import pytest

from vae_tf.cli import main

BEFORE_MOVE = pathlib.Path(__file__).parent / "fixtures" / "before_move"
T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def old_run(tmp_path, monkeypatch, fashion_dir):
    """The old run copied into tmp_path, beside the `data` directory its config.json names
    (relative to the working directory it was trained in)."""
    (tmp_path / "data").mkdir()
    for name in T10K:
        (tmp_path / "data" / name).symlink_to(fashion_dir / name)
    shutil.copytree(BEFORE_MOVE / "run", tmp_path / "runs" / "vae")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "runs" / "vae"


def test_a_run_written_before_the_move_evaluates_to_its_recorded_metrics(old_run, capsys):
    recorded = json.loads((old_run / "metrics.json").read_text())
    assert main(["evaluate", str(old_run), "--iw-samples", "2"]) == 0
    assert "neg_elbo" in capsys.readouterr().out
    metrics = json.loads((old_run / "metrics.json").read_text())
    assert metrics["iw_samples"] == 2 and metrics["examples"] == recorded["examples"] == 2000
    for key in ("neg_elbo", "reconstruction", "kl", "iw_log_likelihood"):
        assert np.isfinite(metrics[key]), key
    # The same weights on the same 2,000 test images: the same figures, up to sampling noise.
    np.testing.assert_allclose(metrics["neg_elbo"], recorded["neg_elbo"], rtol=0.01)
    np.testing.assert_allclose(metrics["kl"], recorded["kl"], rtol=0.1)


def test_a_cvae_written_before_the_move_loads_in_safe_mode_and_runs(real_batch):
    model = keras.saving.load_model(BEFORE_MOVE / "cvae.keras", safe_mode=True)
    images, labels = real_batch[0][:8], real_batch[1][:8]
    reconstructed = np.asarray(model.reconstruct(images, labels))
    assert reconstructed.shape == images.shape and np.isfinite(reconstructed).all()
    samples = np.asarray(model.sample(4, labels=np.array([0, 1, 2, 3]), seed=0))
    assert samples.shape == (4, 28, 28, 1) and np.isfinite(samples).all()


def test_a_vqvae_with_its_prior_written_before_the_move_loads_in_safe_mode_and_runs(real_batch):
    model = keras.saving.load_model(BEFORE_MOVE / "vqvae_with_prior.keras", safe_mode=True)
    images = real_batch[0][:8]
    reconstructed = np.asarray(model.reconstruct(images))
    assert reconstructed.shape == images.shape and np.isfinite(reconstructed).all()
    assert model.can_sample
    samples = np.asarray(model.sample(2, seed=0))
    assert samples.shape == (2, 28, 28, 1) and np.isfinite(samples).all()
