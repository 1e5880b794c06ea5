"""Preemption within an epoch: SIGTERM or Ctrl-C saves a step-level checkpoint and stops
with status 75; periodic checkpoints with --checkpoint-every-steps; the same command
resumes on the rest of the epoch's batches and ends as an uninterrupted run does."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from vae_tf.models import fitting
from vae_tf.runs.checkpoints import MANIFEST, CheckpointError, completed_epochs, newest_whole
from vae_tf.runs.preemption import PREEMPTED_STATUS, Preempted, stop_requests
from vae_tf.runs.training import train


@pytest.fixture(params=["gathered", "tf.data"])
def loop(request, monkeypatch):
    """Both ways an epoch's batches reach the model: gathered in the compiled XLA loop,
    or read from tf.data by Keras's loop."""
    monkeypatch.setattr(fitting, "_xla_is_faster_here", lambda: request.param == "gathered")
    return request.param


@pytest.fixture
def config(small_config, tmp_path):
    """Three epochs of 160 steps (batch 50 of 8,000; 5 executions of 32), deterministic,
    fresh Bernoulli draws."""
    return lambda name, **changes: small_config(
        out=str(tmp_path), name=name, epochs=3, batch_size=50, validation_fraction=0, binarize="dynamic",
        deterministic=True, **changes)


class SignalAt(keras.callbacks.Callback):
    """Sends `signum` to this process at the end of an execution past `step` in `epoch`."""

    def __init__(self, signum, epoch, step):
        super().__init__()
        self.signum, self.epoch, self.step, self.current, self.sent = signum, epoch, step, None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch + 1 >= self.step and not self.sent:
            self.sent += 1
            os.kill(os.getpid(), self.signum)


def epochs_on_record(backup):
    """Epochs the checkpoints on record completed; 0 while the first is being written
    (its files renamed in, its manifest not yet)."""
    try:
        return completed_epochs(backup)
    except CheckpointError:
        return 0


def history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def assert_same_history(run_dir, reference_dir):
    """Each epoch once, with the epoch means of the uninterrupted run: the resumed epoch's
    carry on from the saved running values. Equal to float32 rounding, not bitwise: the
    batch means of Keras's loop (not the gradients) come out 1 ulp apart between two
    processes now and then (seen: 46626.1289 against 46626.1328 after 128 steps)."""
    rows, expected = history(run_dir), history(reference_dir)
    assert [row["epoch"] for row in rows] == [row["epoch"] for row in expected]
    for row, reference_row in zip(rows, expected):
        assert row.keys() == reference_row.keys()
        for key in row:
            if row[key] != reference_row[key]:
                np.testing.assert_allclose(float(row[key]), float(reference_row[key]), rtol=1e-6, err_msg=key)


def assert_same_run(run_dir, reference_dir):
    """Equal weights, bit for bit, and the same history."""
    for a, b in zip(keras.saving.load_model(run_dir / "model.keras").get_weights(),
                    keras.saving.load_model(reference_dir / "model.keras").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert_same_history(run_dir, reference_dir)


@pytest.fixture
def reference(config, tmp_path, loop):
    train(config("reference"), verbose=0)
    return tmp_path / "reference"


def test_sigterm_mid_epoch_checkpoints_and_the_rerun_ends_as_an_uninterrupted_run(config, reference, tmp_path):
    sigterm_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted, match=r"stopped by SIGTERM: checkpoint saved after step 96 of epoch 2 in .*"
                                        r"run the same command to resume"):
        train(config("x"), verbose=0, callbacks=[SignalAt(signal.SIGTERM, epoch=1, step=40)])
    found = newest_whole(tmp_path / "x.partial" / "backup")
    assert (found.epoch, found.step) == (1, 96)  # the end of the execution after the one that saw it
    assert [row["epoch"] for row in history(tmp_path / "x.partial")] == ["0"]
    assert signal.getsignal(signal.SIGTERM) is sigterm_before  # the handler is gone with training

    train(config("x"), verbose=0)
    assert_same_run(tmp_path / "x", reference)


def test_periodic_checkpoints_resume_within_the_epoch(config, reference, tmp_path):
    """A kill (here an exception no callback survives) after a checkpoint within epoch 2."""

    class DieAfter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            found = newest_whole(tmp_path / "y.partial" / "backup")
            if found is not None and found.step:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config("y", checkpoint_every_steps=3), verbose=0, callbacks=[DieAfter()])
    found = newest_whole(tmp_path / "y.partial" / "backup")
    # Callbacks run once per execution of 32 steps: the first past step 3 is the 32nd.
    assert (found.epoch, found.step) == (0, 32)
    manifest = json.loads((tmp_path / "y.partial" / "backup" / MANIFEST).read_text())
    assert [entry["step"] for entry in manifest["checkpoints"]][0] == found.step

    resumed = train(config("y", checkpoint_every_steps=3), verbose=0)
    uninterrupted = train(config("z"), verbose=0)
    for a, b in zip(resumed.model.get_weights(), uninterrupted.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert_same_history(tmp_path / "y", tmp_path / "z")


def test_a_step_checkpoint_with_damaged_metric_values_is_refused(config, tmp_path, loop):
    with pytest.raises(Preempted):
        train(config("w", checkpoint_every_steps=1),
              verbose=0, callbacks=[SignalAt(signal.SIGTERM, epoch=0, step=40)])
    backup = tmp_path / "w.partial" / "backup"
    found = newest_whole(backup)
    assert found.step > 0
    metadata = json.loads(found.metadata.read_text())
    metadata["metrics"]["loss"] = [float("nan"), 1.0]
    # Rewritten whole, so that only the schema (not the checksum) can catch it.
    found.metadata.write_text(json.dumps(metadata))
    manifest = json.loads((backup / MANIFEST).read_text())
    from vae_tf.runs.checkpoints import _describe
    manifest["checkpoints"][0]["files"][found.metadata.name] = _describe(backup, [found.metadata.name])[
        found.metadata.name]
    (backup / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"training_metadata.json: 'metrics' must give the finite values"):
        train(config("w", checkpoint_every_steps=1), verbose=0)


def test_signals_set_the_request_and_a_second_ctrl_c_interrupts(monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.default_int_handler)  # as in a terminal
    with stop_requests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)  # the handler runs between bytecodes of the main thread
        assert stop.is_set() and stop.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is before


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job a script started with `&`
    try:
        with stop_requests() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            assert not stop.is_set()
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_sigterm_to_the_command_exits_75_and_the_same_command_resumes(tiny_data, tmp_path):
    arguments = [sys.executable, "-m", "vae_tf", "train", *tiny_data, "--hidden-units", "32", "--latent-dim", "2",
                 "--iw-samples", "2", "--batch-size", "8", "--epochs", "2", "--deterministic", "--no-export",
                 "--out", str(tmp_path)]
    reference = subprocess.run([*arguments, "--name", "reference"], capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr
    process = subprocess.Popen([*arguments, "--name", "x"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               text=True)
    deadline = time.monotonic() + 300
    while epochs_on_record(tmp_path / "x.partial" / "backup") < 1:
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # early in epoch 2, of 1,000 steps
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == PREEMPTED_STATUS, stderr
    assert "SIGTERM received" in stderr
    assert stderr.strip().splitlines()[-1].startswith("vae-tf: stopped by SIGTERM: checkpoint saved after step ")
    assert newest_whole(tmp_path / "x.partial" / "backup").step > 0

    resumed = subprocess.run([*arguments, "--name", "x"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming x after epoch 1 of 2, step " in resumed.stderr
    assert_same_run(tmp_path / "x", tmp_path / "reference")
