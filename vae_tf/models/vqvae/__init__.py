"""VQ-VAE (van den Oord et al. 2017): the model, its vector quantizer and its PixelCNN prior."""

from vae_tf.models.vqvae.model import VQVAE, fit_prior  # noqa: F401
