"""Data-dependent initialization: the decoder's output biases start at the logits of the
training images' mean (`Autoencoder.initialize_from_data`)."""

import numpy as np
import pytest
import tensorflow as tf

from vae_tf.core.likelihoods import Bernoulli
from vae_tf.models.factory import make_model
from vae_tf.runs.training import build_model, load_config_data


def _batches(images, labels=None, batch_size=3):
    parts = images if labels is None else (images, labels)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)


def test_bernoulli_params_are_the_clipped_logits_of_the_mean():
    logits = Bernoulli.params_for(np.array([0.5, 0.25, 0.0, 1.0]))
    np.testing.assert_allclose(logits[:2], [0.0, np.log(1 / 3)], atol=1e-7)
    np.testing.assert_allclose(logits[2:], [np.log(1e-3 / (1 - 1e-3)), np.log((1 - 1e-3) / 1e-3)], rtol=1e-6)
    np.testing.assert_allclose(tf.sigmoid(logits[:2]), [0.5, 0.25], atol=1e-7)


@pytest.mark.parametrize("kind", ["vae", "ae", "cvae", "gumbel", "hvae"])
def test_an_mlp_decoder_starts_at_the_mean_image(kind):
    rng = np.random.default_rng(0)
    images = (rng.random((10, 4, 4, 1)) < np.linspace(0.0, 1.0, 16).reshape(1, 4, 4, 1)).astype("float32")
    labels = np.arange(10) % 3
    model = make_model(kind, "mlp", (4, 4, 1), 2, hidden_units=(8,), seed=0,
                       num_classes=3 if kind == "cvae" else None)
    other = [w.numpy().copy() for w in model.weights if "dense_out" not in w.path or "kernel" in w.path]

    # batches of 3 leave a partial last batch: the mean is over examples, not batches
    assert model.initialize_from_data(_batches(images, labels))

    bias = model.decoder.get_layer("dense_out").bias.numpy()
    np.testing.assert_allclose(bias, Bernoulli.params_for(images.reshape(10, -1).mean(axis=0)), rtol=1e-6)
    assert bias[0] < -6.9 and bias[-1] > 6.9  # pixels always 0 and always 1: clipped
    after = [w.numpy() for w in model.weights if "dense_out" not in w.path or "kernel" in w.path]
    assert all(np.array_equal(a, b) for a, b in zip(other, after))  # nothing else moved


@pytest.mark.parametrize("kind, arch, likelihood", [("vae", "conv", "bernoulli"), ("vae", "mlp", "gaussian")])
def test_other_decoders_are_left_as_they_are(kind, arch, likelihood):
    model = make_model(kind, arch, (8, 8, 1), 2, hidden_units=(8,), filters=(4,), likelihood=likelihood, seed=0)
    before = [w.numpy().copy() for w in model.weights]

    assert not model.initialize_from_data(_batches(np.ones((4, 8, 8, 1), "float32")))

    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, model.weights))


def test_a_run_starts_from_its_training_mean_unless_told_not_to(small_config):
    config = small_config()
    data = load_config_data(config)
    images = np.concatenate([x.numpy() for x, _ in data.train]).reshape(-1, 28 * 28)

    bias = build_model(config, data).decoder.get_layer("dense_out").bias.numpy()
    np.testing.assert_allclose(bias, Bernoulli.params_for(images.astype("float64").mean(axis=0)), atol=1e-5)

    off = build_model(small_config(init_output_bias=False), data).decoder.get_layer("dense_out").bias.numpy()
    assert np.abs(off).max() <= 1 / np.sqrt(16)  # the random start of nn.Linear's biases
