"""Fixtures of the analysis tests."""

import pytest


@pytest.fixture(scope="session")
def linear_gaussian_vae():
    """`linear_gaussian_vae(sigma=0.5)`: a VAE of x = w z + b + noise with a 1-D latent and
    3-D data, linear encoder and decoder (layers "z_mean", "z_log_var", "dense_out"),
    whose exact posterior and likelihood are known in closed form."""
    import vae_tf

    def build(sigma=0.5):
        encoder = vae_tf.build_mlp_encoder((3,), 1, hidden_units=())
        decoder = vae_tf.build_mlp_decoder((3,), 1, hidden_units=())
        return vae_tf.VAE(encoder, decoder, likelihood=vae_tf.core.likelihoods.Gaussian(sigma=sigma))

    return build
