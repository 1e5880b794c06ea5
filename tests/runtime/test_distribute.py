"""One MirroredStrategy step on 2 logical CPUs equals one step on a single device."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf


def one_step(model, x, y):
    # Plain SGD: unlike Adam's first step, its update scales with the gradient, so a
    # missing division by the number of replicas would show.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    model.fit(dataset, epochs=1, verbose=0)
    return [np.asarray(w) for w in model.weights]


def build(kind, arch, strategy=None):
    with (strategy or tf.distribute.get_strategy()).scope():
        return vae_tf.make_model(kind, arch, (28, 28, 1), 3,
                                 num_classes=10 if kind == "cvae" else None,
                                 hidden_units=(32,), filters=(4, 8))


@pytest.mark.parametrize("kind, arch", [("ae", "mlp"), ("vae", "mlp"), ("cvae", "conv")])
def test_mirrored_step_equals_single_device_step(kind, arch, real_batch, monkeypatch,
                                                 mirrored_strategy):
    # Zero sampling noise makes both runs see identical z (each replica would draw its own).
    monkeypatch.setattr(vae_tf.core.layers, "training_noise", lambda shape, seed_generator: tf.zeros(shape))
    x, y = real_batch[0][:64], real_batch[1][:64]
    strategy = mirrored_strategy
    assert strategy.num_replicas_in_sync == 2

    single = build(kind, arch)
    mirrored = build(kind, arch, strategy)
    mirrored.set_weights(single.get_weights())
    initial = [np.asarray(w) for w in single.weights]

    after_single = one_step(single, x, y)
    after_mirrored = one_step(mirrored, x, y)
    moved = max(np.abs(a - b).max() for a, b in zip(after_single, initial))
    assert moved > 1e-3  # the step did change the weights
    for a, b in zip(after_single, after_mirrored):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_vae_with_real_sampling_noise_trains_under_mirrored(real_batch, mirrored_strategy):
    x, y = real_batch
    strategy = mirrored_strategy
    model = build("vae", "mlp", strategy)
    with strategy.scope():
        model.compile()
    history = model.fit(x, y, batch_size=128, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][1] < history["loss"][0]


def test_endless_repeats_a_finite_dataset_and_leaves_the_rest_alone():
    def shuffled():
        return tf.data.Dataset.range(10).shuffle(10, seed=1, reshuffle_each_iteration=True).batch(4)

    repeated, length = vae_tf.runtime.distribute.endless(shuffled())
    assert length == 3
    fresh = shuffled()
    epochs = [[b.numpy().tolist() for b in fresh] for _ in range(2)]
    assert epochs[0] != epochs[1]
    passes = [b.numpy().tolist() for b in repeated.take(6)]
    assert passes == epochs[0] + epochs[1]  # each pass is the epoch a new iterator would give
    for other in (tf.data.Dataset.range(3).repeat(), tf.data.Dataset.range(3).filter(lambda i: i > 0),
                  np.zeros((4, 2)), None):
        assert vae_tf.runtime.distribute.endless(other) == (other, None)


def test_fit_under_a_strategy_reads_one_iterator_for_all_epochs(real_batch, monkeypatch, mirrored_strategy):
    x, y = real_batch
    model = build("vae", "mlp", mirrored_strategy)
    with mirrored_strategy.scope():
        model.compile()
    train = tf.data.Dataset.from_tensor_slices((x[:40], y[:40])).batch(8)  # 5 batches
    validation = tf.data.Dataset.from_tensor_slices((x[40:56], y[40:56])).batch(8)
    distributed = type(mirrored_strategy.experimental_distribute_dataset(train))
    made = []
    real_iter = distributed.__iter__
    monkeypatch.setattr(distributed, "__iter__", lambda self: made.append(self) or real_iter(self))

    history = model.fit(train, validation_data=validation, epochs=3, verbose=0).history

    # Of a finite dataset Keras makes two per epoch (the next epoch's at the end of each).
    assert len(made) == 2 and len({id(dataset) for dataset in made}) == 2
    assert model.optimizer.iterations.numpy() == 3 * 5
    assert len(history["val_loss"]) == 3 and np.all(np.isfinite(history["val_loss"]))


def test_worker_loop_gives_the_logs_that_keras_gives(real_batch, monkeypatch, mirrored_strategy):
    monkeypatch.setattr(vae_tf.core.layers, "draw_normal", lambda shape, seed: tf.zeros(shape))  # test steps' noise
    x, y = real_batch
    model = build("vae", "mlp", mirrored_strategy)  # loss, reconstruction and kl: three values
    with mirrored_strategy.scope():
        model.compile()
    batches = mirrored_strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(32))

    def logs_of(function):
        for metric in model.metrics:
            metric.reset_state()
        iterator = iter(batches)
        logs = [function(iterator), function(iterator)]  # the second averages two batches
        return [{name: np.asarray(value) for name, value in step.items()} for step in logs]

    keras.Model.make_test_function(model, force=True)  # Keras's own, not the model's override
    expected = logs_of(model.test_function)
    got = logs_of(vae_tf.models.loops.worker_loop.make_function(model, model.test_step))
    for want, have in zip(expected, got, strict=True):
        assert list(have) == list(want)
        for name in want:
            assert have[name].shape == want[name].shape == ()
            np.testing.assert_allclose(have[name], want[name], rtol=1e-6)
    assert got[0]["loss"] != got[1]["loss"]


def test_validation_under_a_strategy_sees_the_whole_validation_set_each_epoch(real_batch, mirrored_strategy):
    x, y = real_batch
    model = build("ae", "mlp", mirrored_strategy)  # deterministic: val_loss is evaluate's loss
    with mirrored_strategy.scope():
        model.compile()
    train = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(8)
    validation = tf.data.Dataset.from_tensor_slices((x[32:52], y[32:52])).batch(8)  # 8, 8 and 4
    for epoch in range(2):
        history = model.fit(train, validation_data=validation, initial_epoch=epoch, epochs=epoch + 3,
                            verbose=0).history
        np.testing.assert_allclose(history["val_loss"][-1], model.evaluate(validation, verbose=0)[0], rtol=1e-5)


def test_one_iterator_only_with_one_step_per_execution(real_batch, mirrored_strategy):
    """Several steps per execution would run past an epoch's end on a repeated dataset."""
    x, y = real_batch
    one_device = tf.distribute.OneDeviceStrategy("/cpu:0")  # a strategy: 32 steps per execution
    model = build("ae", "mlp", one_device)
    with one_device.scope():
        model.compile()
    assert not model.reads_one_iterator
    model.fit(tf.data.Dataset.from_tensor_slices((x[:40], y[:40])).batch(8), epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 * 5
    mirrored = build("ae", "mlp", mirrored_strategy)
    with mirrored_strategy.scope():
        mirrored.compile()
    assert mirrored.reads_one_iterator
