"""vae_tf: autoencoders, variational autoencoders and conditional VAEs in Keras 3."""

from vae_tf import _startup

if _startup.is_command():  # before anything imports TensorFlow
    _startup.import_tensorflow_quietly()

# The public API, imported after the quiet start-up above.
from vae_tf.analysis import samplers  # noqa: E402
from vae_tf.core import likelihoods, priors  # noqa: E402
from vae_tf.core.layers import OneHot, Sampling  # noqa: E402
from vae_tf.core.networks import (  # noqa: E402
    build_conv_decoder,
    build_conv_encoder,
    build_mlp_decoder,
    build_mlp_encoder,
)
from vae_tf.core.optimizers import FusedAdam  # noqa: E402
from vae_tf.models import AE, CVAE, DIPVAE, IWAE, TCVAE, VAE, VQVAE, WAE, AnnealedVAE, InfoVAE  # noqa: E402
from vae_tf.models.factory import make_model  # noqa: E402
from vae_tf.models.vqvae.quantizer import VectorQuantizer  # noqa: E402
from vae_tf.runtime.distribute import get_strategy  # noqa: E402
from vae_tf.serving.export import export_saved_model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AE",
    "AnnealedVAE",
    "CVAE",
    "DIPVAE",
    "FusedAdam",
    "IWAE",
    "InfoVAE",
    "OneHot",
    "Sampling",
    "TCVAE",
    "VAE",
    "VQVAE",
    "VectorQuantizer",
    "WAE",
    "build_conv_decoder",
    "build_conv_encoder",
    "build_mlp_decoder",
    "build_mlp_encoder",
    "export_saved_model",
    "get_strategy",
    "likelihoods",
    "make_model",
    "priors",
    "samplers",
]
