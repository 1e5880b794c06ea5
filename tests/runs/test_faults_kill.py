"""Real processes killed (SIGKILL) at the worst moment of a write, through the test-only
injection point `vae_tf.testing.faults.kill_point`, then the rerun a user would type."""

import pathlib
import signal
import socket

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.runs.checkpoints import completed_epochs
from vae_tf.cli import main

from helpers import run_vae_tf



@pytest.fixture(scope="module")
def run_args(tiny_data):
    """`vae-tf train` arguments of a 3-epoch run that resumes exactly (deterministic ops,
    a fresh Bernoulli draw per batch)."""
    return [*tiny_data, "--model", "vae", "--hidden-units", "32", "--latent-dim", "2", "--iw-samples", "2",
            "--batch-size", "128", "--epochs", "3", "--binarize", "dynamic", "--deterministic", "--limit", "2000",
            "--no-export"]



def weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras").get_weights()


def files(root):
    return {p: p.read_bytes() for p in pathlib.Path(root).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def uninterrupted(run_args, tmp_path_factory):
    """The weights of the run the killed ones are compared with."""
    out = tmp_path_factory.mktemp("reference")
    status, err = run_vae_tf("train", *run_args, "--out", str(out), "--name", "reference")
    assert status == 0, err
    return weights(out / "reference")


def rerun_resumes_exactly(run_args, out, reference):
    """The same `train` command again resumes after epoch 1 and ends as `reference`."""
    status, err = run_vae_tf("train", *run_args, "--out", str(out), "--name", "x")
    assert status == 0, err
    assert "took over the lock" in err and "resuming x after epoch 1 of 3" in err
    for a, b in zip(weights(out / "x"), reference, strict=True):
        np.testing.assert_array_equal(a, b)
    epochs = [line.split(",")[0] for line in (out / "x" / "history.csv").read_text().splitlines()]
    assert epochs == ["epoch", "0", "1", "2"]


@pytest.mark.slow
def test_sigkill_mid_checkpoint_write_then_rerun_resumes_exactly(run_args, tmp_path, uninterrupted):
    """Killed with half of the second epoch's weights file written: the first checkpoint
    is untouched, and the rerun resumes from it and ends bit-identical to an uninterrupted run."""
    status, err = run_vae_tf("train", *run_args, "--out", str(tmp_path), "--name", "x", kill_at="checkpoint-write:2")
    assert status == -signal.SIGKILL, err
    backup = tmp_path / "x.partial" / "backup"
    half, whole = (backup / ".new.latest.weights.h5").stat().st_size, (backup / "latest.weights.h5").stat().st_size
    assert 0 < half < whole  # mid-write
    assert completed_epochs(backup) == 1
    rerun_resumes_exactly(run_args, tmp_path, uninterrupted)


@pytest.mark.slow
def test_sigkill_mid_checkpoint_then_rerun_resumes_exactly(run_args, tmp_path, uninterrupted):
    """Killed in the second epoch's backup, after the first checkpoint was moved to its
    `previous.` name and before the new one was renamed in: the rerun resumes from the
    first and ends bit-identical to an uninterrupted run."""
    status, err = run_vae_tf("train", *run_args, "--out", str(tmp_path), "--name", "x", kill_at="checkpoint:2")
    assert status == -signal.SIGKILL, err
    backup = tmp_path / "x.partial" / "backup"
    names = sorted(p.name for p in backup.iterdir())
    assert "latest.weights.h5" not in names and ".new.latest.weights.h5" in names, names  # mid-rename
    assert completed_epochs(backup) == 1  # the first checkpoint, found under its previous name
    rerun_resumes_exactly(run_args, tmp_path, uninterrupted)


@pytest.mark.slow
def test_sigkill_before_the_export_rename_then_rerun_adds_a_whole_version(run_args, tmp_path):
    run, models = tmp_path / "runs" / "e", tmp_path / "sm"
    assert main(["train", *run_args[:-1], "--epochs", "1", "--out", str(run.parent), "--name", "e",
                 "--saved-models", str(models)]) == 0
    first = files(models / "e" / "1")
    status, err = run_vae_tf("export", str(run), "--saved-models", str(models), kill_at="export:1")
    assert status == -signal.SIGKILL, err
    assert sorted(p.name for p in (models / "e").iterdir() if not p.name.startswith(".")) == ["1"]
    assert (run.parent / ".e.lock").read_text().split()[1] == socket.gethostname()  # left by the dead process

    status, err = run_vae_tf("export", str(run), "--saved-models", str(models))
    assert status == 0, err
    assert "took over the lock" in err
    assert files(models / "e" / "1") == first  # the finished version is untouched
    served = tf.saved_model.load(str(models / "e" / "2"))  # a whole new version
    images = np.zeros((2, 28, 28, 1), "float32")
    np.testing.assert_allclose(served.signatures["reconstruct"](images=images)["reconstructions"].numpy(),
                               tf.saved_model.load(str(models / "e" / "1"))
                               .signatures["reconstruct"](images=images)["reconstructions"].numpy())
