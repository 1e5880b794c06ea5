import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.models.schedules import BetaSchedule
from vae_tf.runs.callbacks import ImageLogger, RunProgbar
from vae_tf.runs.training import train


def test_warm_up_raises_beta_linearly_and_logs_it(real_batch):
    x, _ = real_batch
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, hidden_units=(32,))
    model.compile()
    history = model.fit(x, epochs=5, batch_size=256, verbose=0,
                        callbacks=[BetaSchedule(2.0, warmup_epochs=4)]).history
    np.testing.assert_allclose(history["beta"], [0.0, 0.5, 1.0, 1.5, 2.0])
    contribution = np.array(history["loss"]) - np.array(history["reconstruction"])
    np.testing.assert_allclose(contribution, np.array(history["beta"]) * history["kl"], rtol=1e-3, atol=1e-3)


def test_no_warm_up_keeps_beta():
    schedule = BetaSchedule(0.5)
    assert [schedule.value(e) for e in range(3)] == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="warmup_epochs"):
        BetaSchedule(1.0, warmup_epochs=-1)
    with pytest.raises(ValueError, match="beta"):
        BetaSchedule(-1.0)


def test_image_logger_writes_tensorboard_images(real_batch, tmp_path):
    x, y = real_batch
    model = vae_tf.make_model("cvae", "mlp", (28, 28, 1), 2, num_classes=10, hidden_units=(16,))
    model.compile()
    model.fit(x[:64], y[:64], epochs=2, batch_size=32, verbose=0,
              callbacks=[ImageLogger(tmp_path, x[:4], y[:4], num_samples=4)])
    events = list((tmp_path / "images").glob("events.out.tfevents.*"))
    assert len(events) == 1
    tags = {value.tag for record in tf.compat.v1.train.summary_iterator(str(events[0]))
            for value in record.summary.value}
    assert tags == {"reconstructions", "samples"}


def test_run_progbar_numbers_epochs_of_the_whole_run(real_batch, capsys):
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, hidden_units=(32,))
    model.compile()
    progbar = RunProgbar(3)
    for epoch in range(3):  # one fit per epoch, as vae_tf.runs.training does
        model.fit(real_batch[0], batch_size=256, initial_epoch=epoch, epochs=epoch + 1,
                  verbose=2, callbacks=[progbar])
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("Epoch")] == [
        "Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]


def epoch_counters(out):
    """{"Epoch k/N": [(step, total), ...]}: every step counter the bar printed, per epoch."""
    text = re.sub(r"\x1b\[[0-9;]*m|\x08", "", out)
    counters = {}
    for line in re.split(r"[\r\n]", text):
        if line.startswith("Epoch "):
            current = counters.setdefault(line, [])
        elif match := re.match(r"\s*(\d+)/(\d+) ", line):
            current.append((int(match[1]), int(match[2])))
    return counters


# Each execution takes longer than the bar's 0.05 s refresh interval, so every update is drawn.
slow_steps = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: time.sleep(0.06))


def test_run_progbar_ends_each_epoch_at_its_step_count(real_batch, capsys):
    x, _ = real_batch
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 2, hidden_units=(16,))
    model.compile(steps_per_execution=4)
    progbar = RunProgbar(3)
    for epoch in range(3):  # 11 steps: executions of 4, 4 and a final partial 3
        model.fit(x[:170], batch_size=16, initial_epoch=epoch, epochs=epoch + 1,
                  verbose=1, callbacks=[progbar, slow_steps])
    counters = epoch_counters(capsys.readouterr().out)
    assert list(counters) == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    for printed in counters.values():
        assert [step for step, _ in printed] == [4, 8, 11, 11]  # the last is the epoch's end
        assert {total for _, total in printed} == {11}


def test_a_resumed_run_counts_each_epoch_to_its_step_count(small_config, tmp_path, capsys):
    class StopAt(keras.callbacks.Callback):  # as if killed after the first epoch's checkpoint
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    # 7,200 training images in batches of 256: 29 steps, one partial execution of 32.
    config = small_config(out=str(tmp_path), name="r")
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=1, callbacks=[StopAt(), slow_steps])
    first = epoch_counters(capsys.readouterr().out)
    train(config, verbose=1, callbacks=[slow_steps])
    resumed = epoch_counters(capsys.readouterr().out)
    assert first["Epoch 1/2"][-1] == (29, 29) and first["Epoch 2/2"] == []
    assert list(resumed) == ["Epoch 2/2"]
    assert resumed["Epoch 2/2"] == [(29, 29), (29, 29)]
