"""VQ-VAE (van den Oord et al. 2017): the model, its networks, its vector quantizer, its
PixelCNN prior and the fitting of that prior."""

from vae_tf.models.vqvae.model import VQVAE, make_vqvae  # noqa: F401
from vae_tf.models.vqvae.prior import encode_dataset, fit_prior, make_prior  # noqa: F401

__all__ = ["VQVAE", "encode_dataset", "fit_prior", "make_prior", "make_vqvae"]
