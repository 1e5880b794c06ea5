"""A FactorVAE run stopped mid-epoch (SIGTERM) or killed (SIGKILL) resumes to exactly the
weights, discriminator and both optimizers' state of an uninterrupted run: the
discriminator's optimizer is saved in every checkpoint beside the model's."""

import json
import os
import signal

import keras
import numpy as np
import pytest

from helpers import run_vae_tf
from vae_tf.models import fitting
from vae_tf.runs.preemption import Preempted
from vae_tf.runs.training import train

DISCRIMINATOR = dict(discriminator_layers=2, discriminator_units=16)


def assert_same_state(model, reference):
    """Equal weights (the discriminator's among them) and optimizer states, bit for bit."""
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(model.discriminator_optimizer.variables) > 2  # built: its moments are there
    for a, b in zip(model.optimizer_variables, reference.optimizer_variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


class SigtermAt(keras.callbacks.Callback):
    """Sends SIGTERM to this process once past `step` in `epoch`."""

    def __init__(self, epoch, step):
        super().__init__()
        self.epoch, self.step, self.current, self.sent = epoch, step, None, False

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch + 1 >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["gathered", "tf.data"])
def test_sigterm_mid_epoch_then_rerun_ends_as_an_uninterrupted_run(loop, small_config, tmp_path, monkeypatch):
    monkeypatch.setattr(fitting, "_xla_is_faster_here", lambda: loop == "gathered")

    def config(name):
        return small_config(model="factorvae", **DISCRIMINATOR, out=str(tmp_path), name=name, epochs=2,
                            batch_size=50, validation_fraction=0, binarize="dynamic", deterministic=True)

    reference = train(config("reference"), verbose=0)
    with pytest.raises(Preempted, match="checkpoint saved after step"):
        train(config("x"), verbose=0, callbacks=[SigtermAt(epoch=1, step=40)])
    resumed = train(config("x"), verbose=0)
    assert_same_state(resumed.model, reference.model)
    saved = keras.saving.load_model(tmp_path / "x" / "model.keras")
    assert_same_state(saved, reference.model)  # the .keras file keeps both optimizers too


@pytest.mark.slow
def test_sigkill_then_rerun_gives_exactly_the_uninterrupted_state(tiny_data, tmp_path):
    arguments = [*tiny_data, "--model", "factorvae", "--discriminator-layers", "2", "--discriminator-units", "16",
                 "--hidden-units", "32", "--latent-dim", "3", "--iw-samples", "1", "--batch-size", "32",
                 "--epochs", "3", "--binarize", "dynamic", "--deterministic", "--no-export", "--out", str(tmp_path)]
    status, err = run_vae_tf("train", *arguments, "--name", "reference")
    assert status == 0, err
    # Killed while writing the second checkpoint: the first (after epoch 1) stands.
    status, err = run_vae_tf("train", *arguments, "--name", "resumed", kill_at="checkpoint-write:2")
    assert status == -signal.SIGKILL, err
    status, err = run_vae_tf("train", *arguments, "--name", "resumed")
    assert status == 0, err
    assert "resuming resumed after epoch 1" in err
    metadata = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert metadata["model"]["kind"] == "factorvae"
    assert_same_state(keras.saving.load_model(tmp_path / "resumed" / "model.keras"),
                      keras.saving.load_model(tmp_path / "reference" / "model.keras"))
