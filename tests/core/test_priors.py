import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.core import priors
from vae_tf.core.layers import reparameterize

from helpers import mixture_log_prob


def test_standard_normal_density_kl_and_samples():
    prior = priors.StandardNormal(3)
    z = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]], "float32")
    expected = -0.5 * (3 * math.log(2 * math.pi) + (z**2).sum(axis=1))
    np.testing.assert_allclose(prior.log_prob(z), expected, rtol=1e-6)
    assert prior.analytic_kl
    np.testing.assert_allclose(prior.kl(np.zeros((4, 3)), np.zeros((4, 3))), np.zeros(4), atol=1e-7)
    np.testing.assert_array_equal(prior.sample(5, seed=3), prior.sample(5, seed=3))
    np.testing.assert_array_equal(prior.sample(5, seed=(3, 0)), prior.sample(5, seed=(3, 0)))
    assert prior.sample(5, seed=3).shape == (5, 3)


def test_monte_carlo_kl_of_the_interface_converges_to_the_analytic_one():
    prior = priors.StandardNormal(2)
    z_mean = np.array([[0.5, -1.0]], "float32")
    z_log_var = np.array([[-0.7, 0.4]], "float32")
    z = reparameterize(z_mean, z_log_var, seed=0, num_samples=20000)
    monte_carlo = priors.Prior.kl(prior, z_mean, z_log_var, z)  # the learned-prior estimator
    analytic = float(prior.kl(z_mean, z_log_var)[0])
    assert float(np.mean(monte_carlo)) == pytest.approx(analytic, abs=float(4 * np.std(monte_carlo) / np.sqrt(20000)))


def attached_vamp(num_components=4, latent_dim=2, shape=(6,)):
    encoder = vae_tf.build_mlp_encoder(shape, latent_dim, hidden_units=(8,))
    model = vae_tf.VAE(encoder, vae_tf.build_mlp_decoder(shape, latent_dim),
                       prior=priors.VampPrior(latent_dim, num_components, shape))
    return model, model.prior


def test_vamp_prior_density_is_the_mixture_of_posteriors_at_the_pseudo_inputs():
    model, prior = attached_vamp()
    pseudo = np.clip(np.asarray(prior.pseudo_inputs), 0, 1)
    codes = model.encode(pseudo)
    means, variances = np.asarray(codes["z_mean"]), np.exp(np.asarray(codes["z_log_var"]))
    z = np.random.default_rng(0).normal(size=(7, 2)).astype("float32")
    expected = mixture_log_prob(z, np.full(4, 0.25), means, variances)
    np.testing.assert_allclose(prior.log_prob(z), expected, rtol=1e-5)
    # Works on (K, batch, latent_dim) draws, as importance weighting needs.
    stacked = np.asarray(prior.log_prob(np.stack([z, z])))
    np.testing.assert_allclose(stacked, np.stack([expected, expected]), rtol=1e-5)


def test_vamp_prior_samples_follow_the_mixture_and_repeat_by_seed():
    model, prior = attached_vamp(num_components=3)
    # Spread the components apart so their means are distinguishable.
    prior.pseudo_inputs.assign(np.linspace(0, 1, 18).reshape(3, 6).astype("float32"))
    codes = model.encode(np.clip(np.asarray(prior.pseudo_inputs), 0, 1))
    draws = np.asarray(prior.sample(20000, seed=1))
    np.testing.assert_allclose(draws.mean(axis=0), np.asarray(codes["z_mean"]).mean(axis=0), atol=0.05)
    np.testing.assert_array_equal(prior.sample(4, seed=1), prior.sample(4, seed=1))
    seed = tf.constant([4, 0])
    np.testing.assert_array_equal(prior.sample(4, seed=seed), prior.sample(4, seed=seed))
    assert not np.allclose(prior.sample(4, seed=1), prior.sample(4, seed=2))


def test_vamp_prior_errors_and_config():
    with pytest.raises(ValueError, match="num_components"):
        priors.VampPrior(2, 0, (4,))
    with pytest.raises(ValueError, match="input_shape"):
        priors.VampPrior(2, 3)
    with pytest.raises(ValueError, match="not attached"):
        priors.VampPrior(2, 3, (4,)).log_prob(np.zeros((1, 2), "float32"))
    with pytest.raises(ValueError, match="prior must be one of"):
        priors.make("laplace", 2, (4,))
    prior = priors.VampPrior(2, 3, (4,))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(prior))
    assert clone.get_config() == prior.get_config()
    assert clone.pseudo_inputs.shape == (3, 4)
