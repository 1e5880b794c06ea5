"""Preemption-safe training: resume from BackupAndRestore state, the NaN stop, and an
exact resume after a real SIGKILL with --deterministic."""

import csv
import json
import pathlib
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest

from vae_tf.runs.callbacks import TrainingDiverged
from vae_tf.config import RunConfig
from vae_tf.runs.training import train


@pytest.fixture(scope="module")
def small_config(small_config):
    """The shared small run with three epochs of a 32-unit MLP, from flat settings (the
    format-1 layout migrates)."""
    return lambda **changes: small_config(**{"hidden_units": (32,), "epochs": 3, **changes})


def history_epochs(run_dir):
    with open(pathlib.Path(run_dir) / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


class InterruptIn(keras.callbacks.Callback):
    """Raises KeyboardInterrupt partway through the given epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch >= 5:  # batch ends come per execution
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_with_a_complete_history(small_config, tmp_path, caplog):
    config = small_config(out=str(tmp_path), name="r")
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[InterruptIn(epoch=1)])
    partial = tmp_path / "r.partial"
    assert history_epochs(partial) == [0]
    assert json.loads((partial / "backup" / "training_metadata.json").read_text())["epoch"] == 1

    changed = small_config(lr=0.01, out=str(tmp_path), name="r")
    with pytest.raises(FileExistsError, match=r"configuration differs \(training.lr\); rerun it unchanged"):
        train(changed, verbose=0)
    assert (partial / "backup").is_dir()  # the refused run touched nothing

    caplog.set_level("INFO", logger="vae_tf")
    finished = train(config, verbose=0)
    run = finished.path
    assert "resuming r after epoch 1 of 3" in caplog.text
    assert history_epochs(run) == [0, 1, 2]
    assert not partial.exists() and not (run / "backup").exists()
    assert (run / "model.keras").is_file()
    assert json.loads((run / "metrics.json").read_text()) == finished.metrics
    with pytest.raises(FileExistsError, match="already exists"):
        train(config, verbose=0)


class PoisonWeights(keras.callbacks.Callback):
    """Sets a decoder weight to NaN at the start of the given epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            kernel = self.model.decoder.trainable_weights[0]
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def test_nan_loss_stops_naming_the_epoch_and_keeps_the_last_good_checkpoint(small_config, tmp_path):
    config = small_config(out=str(tmp_path), name="nan")
    with pytest.raises(TrainingDiverged, match=r"loss became nan in epoch 2; the checkpoint after "
                                               r"epoch 1 is kept in .*nan.partial/backup"):
        train(config, verbose=0, callbacks=[PoisonWeights(epoch=1)])
    backup = tmp_path / "nan.partial" / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    with h5py.File(backup / "latest.weights.h5") as f:
        arrays = []
        f.visititems(lambda name, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    assert arrays and all(np.all(np.isfinite(a)) for a in arrays)
    assert history_epochs(tmp_path / "nan.partial") == [0]  # no NaN row
    assert not (tmp_path / "nan").exists()


# --- a real SIGKILL, then the same command again --------------------------------------

@pytest.fixture(scope="module")
def kill_run(tiny_data):
    return [*tiny_data, "--model", "vae", "--hidden-units", "64", "--latent-dim", "4", "--iw-samples", "2",
            "--batch-size", "32", "--epochs", "4", "--binarize", "dynamic", "--deterministic", "--no-export"]


def vae_tf(kill_run, tmp_path, name, **popen):
    command = [sys.executable, "-m", "vae_tf", "train", *kill_run, "--out", str(tmp_path), "--name", name]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)


def final_weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras").get_weights()


def test_sigkill_then_rerun_gives_exactly_the_uninterrupted_weights(kill_run, tmp_path):
    reference = vae_tf(kill_run, tmp_path, "reference")
    killed = vae_tf(kill_run, tmp_path, "resumed")
    backup = tmp_path / "resumed.partial" / "backup"
    deadline = time.monotonic() + 300
    try:
        while completed(backup) < 2:
            assert killed.poll() is None, killed.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint after epoch 2 within 300 s"
            time.sleep(0.05)
        time.sleep(0.5)  # into epoch 3
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "resumed").exists()

    resumed = vae_tf(kill_run, tmp_path, "resumed")
    errors = {}
    for name, process in (("resumed", resumed), ("reference", reference)):
        errors[name] = process.communicate(timeout=600)[1]
        assert process.returncode == 0, errors[name]
    assert "resuming resumed after epoch" in errors["resumed"]
    assert history_epochs(tmp_path / "resumed") == [0, 1, 2, 3]
    for a, b in zip(final_weights(tmp_path / "resumed"), final_weights(tmp_path / "reference"), strict=True):
        np.testing.assert_array_equal(a, b)


def completed(backup):
    try:
        return json.loads((backup / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):  # not there yet, or being written
        return 0


def test_leftover_partial_directories_that_cannot_resume_are_refused(small_config, tmp_path):
    from vae_tf.runs.run import check_start, start
    from vae_tf.runtime.files import write_json

    config = small_config(out=str(tmp_path), name="r")
    partial = tmp_path / "r.partial"
    partial.mkdir()
    with pytest.raises(FileExistsError, match="r.partial holds an interrupted run: it has no readable config.json"):
        check_start(config)
    write_json(partial / "config.json", config.to_dict())
    (partial / "backup").mkdir()
    assert check_start(config) is True
    assert start(config, resume=True) == partial
    assert (partial / "backup").is_dir()  # kept, to resume from
    changed = small_config(out=str(tmp_path), name="r", latent_dim=3)
    with pytest.raises(FileExistsError, match="its configuration differs .model.latent_dim."):
        check_start(changed)
    assert check_start(changed, overwrite=True) is False
    assert (partial / "backup").is_dir()  # checking writes nothing
    assert start(changed, resume=False) == partial
    assert not (partial / "backup").exists()  # started afresh
    assert RunConfig.from_dict(json.loads((partial / "config.json").read_text())) == changed


def test_history_rows_past_the_checkpoint_are_dropped(tmp_path):
    from vae_tf.runs.training import _drop_history_after

    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.5\n")
    _drop_history_after(path, 2)  # died after logging epoch 2, before its checkpoint
    assert path.read_text() == "epoch,loss\n0,3.0\n1,2.0\n"
    _drop_history_after(path, 2)
    assert history_epochs(tmp_path) == [0, 1]
