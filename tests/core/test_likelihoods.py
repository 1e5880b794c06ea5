import math

import numpy as np
import pytest
import tensorflow as tf

from vae_tf.core import likelihoods


def test_bernoulli_nll_is_binary_cross_entropy_summed_over_pixels():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 4, 4, 1)).astype("float32")
    logits = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    p = 1.0 / (1.0 + np.exp(-logits.astype("float64")))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(axis=1)
    got = np.asarray(likelihoods.Bernoulli().negative_log_likelihood(x, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bernoulli_nll_is_stable_for_extreme_logits():
    x = np.array([[1.0, 0.0]], "float32")
    logits = np.array([[-200.0, 200.0]], "float32")
    got = float(likelihoods.Bernoulli().negative_log_likelihood(x, logits)[0])
    assert got == pytest.approx(400.0, rel=1e-6)


def test_bernoulli_mean_is_sigmoid():
    np.testing.assert_allclose(
        np.asarray(likelihoods.Bernoulli().mean(np.array([0.0, 100.0], "float32"))), [0.5, 1.0]
    )


def test_gaussian_nll_includes_constants():
    x = np.array([[0.0, 1.0]], "float32")
    mean = np.array([[0.5, 0.5]], "float32")
    sigma = 0.1
    expected = 2 * (0.5 * (0.5 / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi))
    got = float(likelihoods.Gaussian(sigma=sigma).negative_log_likelihood(x, mean)[0])
    assert got == pytest.approx(expected, rel=1e-5)


def test_gaussian_nll_of_colour_images_from_bfloat16_means():
    # Images and a mixed precision decoder's output: summed over every pixel and channel.
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 3, 5, 3)).astype("float32")
    mean = tf.cast(rng.uniform(size=(2, 3, 5, 3)), "bfloat16")
    sigma = 0.2
    diff = x - np.asarray(tf.cast(mean, "float32"))
    expected = (0.5 * (diff / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)).reshape(2, -1).sum(1)
    got = np.asarray(likelihoods.Gaussian(sigma=sigma).negative_log_likelihood(x, mean))
    assert got.shape == (2,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gaussian_sigma_is_fixed_or_learned():
    assert likelihoods.Gaussian(sigma=0.5).trainable_weights == []
    learned = likelihoods.Gaussian(sigma=0.5, learn_sigma=True)
    assert len(learned.trainable_weights) == 1
    assert float(learned.sigma) == pytest.approx(0.5)
    assert likelihoods.Gaussian.from_config(learned.get_config()).learn_sigma


@pytest.mark.parametrize("sigma", [0.0, -1.0])
def test_gaussian_rejects_non_positive_sigma(sigma):
    with pytest.raises(ValueError, match="sigma must be > 0"):
        likelihoods.Gaussian(sigma=sigma)


def test_get_by_name_and_errors():
    assert isinstance(likelihoods.get("bernoulli"), likelihoods.Bernoulli)
    gaussian = likelihoods.get("gaussian", sigma=0.3)
    assert float(gaussian.sigma) == pytest.approx(0.3)
    assert likelihoods.get(gaussian) is gaussian
    with pytest.raises(ValueError, match="'laplace'"):
        likelihoods.get("laplace")
    with pytest.raises(ValueError, match="sigma"):
        likelihoods.get("bernoulli", sigma=0.1)
