"""VQ-VAE and PixelCNN prior steps under MirroredStrategy (2 logical CPUs) equal the
same steps on one device: the codebook (gradient or EMA) and its dead-code restarts
follow the global batch, identically on every replica."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.models.vqvae.model import make_vqvae
from vae_tf.models.vqvae.prior import make_prior

K = 16


def train(model, data, batch_size, steps):
    # Plain SGD: its update scales with the gradient, so a missing division by the
    # number of replicas would show (Adam's first steps would hide it).
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(batch_size).take(steps)
    history = model.fit(dataset, epochs=1, verbose=0).history
    return history, [np.asarray(w) for w in model.weights]


def assert_same_on_every_replica(strategy, model):
    for variable in model.weights:
        values = strategy.experimental_local_results(variable.value)
        assert len(values) == 2
        np.testing.assert_array_equal(values[0], values[1], err_msg=variable.path)


@pytest.mark.parametrize("ema", [True, False])
def test_vqvae_steps_under_mirrored_equal_single_device_steps(ema, real_batch, mirrored_strategy):
    x = real_batch[0][:192]

    def build(strategy):
        with strategy.scope():
            # Restarting a code after one unused step makes every step restart some.
            return make_vqvae((28, 28, 1), num_embeddings=K, embedding_dim=3, filters=(4, 8),
                              ema=ema, restart_after=1, seed=0)

    single = build(tf.distribute.get_strategy())
    mirrored = build(mirrored_strategy)
    mirrored.set_weights(single.get_weights())
    first_batch_codes = np.unique(single.encode(x[:64])["codes"].numpy())
    assert len(first_batch_codes) < K  # so the first step does restart codes
    initial = [np.asarray(w) for w in single.weights]

    single_history, after_single = train(single, x, 64, 3)
    mirrored_history, after_mirrored = train(mirrored, x, 64, 3)

    codebook = single.quantizer.codebook.numpy()
    moved = np.abs(codebook - initial[[w.path for w in single.weights].index(
        single.quantizer.codebook.path)]).max(axis=1)
    assert (moved > 1e-3).all()  # every code moved: used ones by the update, others restarted
    for variable, a, b in zip(single.weights, after_single, after_mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=variable.path)
    for metric in ("loss", "perplexity", "codebook_usage"):  # metrics of the global batch
        np.testing.assert_allclose(mirrored_history[metric], single_history[metric], rtol=1e-4,
                                   err_msg=metric)
    assert_same_on_every_replica(mirrored_strategy, mirrored)


def test_conditional_prior_steps_under_mirrored_equal_single_device_steps(mirrored_strategy):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, K, size=(128, 4, 4)).astype("int32")
    labels = rng.integers(0, 3, size=128).astype("int32")

    def build(strategy):
        model = make_vqvae((16, 16, 1), num_embeddings=K, embedding_dim=3, filters=(4, 8))
        with strategy.scope():
            return make_prior(model, num_classes=3, filters=8, num_layers=2)

    single = build(tf.distribute.get_strategy())
    mirrored = build(mirrored_strategy)
    mirrored.set_weights(single.get_weights())
    initial = [np.asarray(w) for w in single.weights]

    single_history, after_single = train(single, (codes, labels), 64, 2)
    _, after_mirrored = train(mirrored, (codes, labels), 64, 2)

    assert max(np.abs(a - b).max() for a, b in zip(after_single, initial)) > 1e-3
    assert np.isfinite(single_history["nll"]).all()
    for variable, a, b in zip(single.weights, after_single, after_mirrored):
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=variable.path)
    assert_same_on_every_replica(mirrored_strategy, mirrored)
