"""The deterministic autoencoder."""

import keras

from vae_tf.models import registry
from vae_tf.models.base import Autoencoder


@keras.saving.register_keras_serializable(package="vae_tf")
class AE(Autoencoder):
    """Deterministic autoencoder; its loss is the reconstruction NLL.

    It has no prior: `sample` needs a `latent_sampler`, e.g. a
    `vae_tf.analysis.samplers.GaussianMixtureSampler` fitted to its training codes.

    Args:
        encoder: keras.Model. Maps images to `z` (e.g. `build_mlp_encoder(...,
            variational=False)`).
        decoder: keras.Model. Maps `z` to logits (Bernoulli) or means (Gaussian).
        likelihood: str or likelihood layer. "bernoulli", "gaussian" or an instance
            from `vae_tf.core.likelihoods`. Defaults to "bernoulli".
        seed: int or None. Seed for `sample` when it is given no seed. Defaults to None.

    Example:

    >>> ae = AE(build_mlp_encoder((784,), 32, variational=False),
    ...         build_mlp_decoder((784,), 32))
    >>> ae.compile(); ae.fit(x_train, epochs=10)
    """

    def encode(self, x, labels=None, training=False):
        """Returns {"z": the latent codes of images}."""
        z = self.encoder(self.network_inputs(self._check_images(x), labels), training=training)
        return {"z": z}

    def per_example_terms(self, x, labels=None, seed=None, training=False):
        """Returns {"reconstruction": -log p(x | decoder(encoder(x)))} per example; no noise."""
        x = self._check_images(x)
        z = self.encode(x, labels, training=training)["z"]
        return {"reconstruction": self._decoder_nll(x, z, labels, training=training)}


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape):
    return AE(encoder, decoder, likelihood=likelihood, seed=seed)


registry.register(registry.Family(
    name="ae",
    summary="deterministic autoencoder: compression, features, reconstruction scores",
    model_class=AE, variational=False, conditional=False, build=_build,
))
