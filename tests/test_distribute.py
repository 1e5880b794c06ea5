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
    monkeypatch.setattr(vae_tf.layers, "training_noise", lambda shape, seed_generator: tf.zeros(shape))
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
