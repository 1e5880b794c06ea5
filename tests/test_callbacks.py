import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.callbacks import BetaSchedule, ImageLogger, RunProgbar


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
    for epoch in range(3):  # one fit per epoch, as vae_tf.training does
        model.fit(real_batch[0], batch_size=256, initial_epoch=epoch, epochs=epoch + 1,
                  verbose=2, callbacks=[progbar])
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("Epoch")] == [
        "Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
