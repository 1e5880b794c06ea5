"""Model families, one module each, all self-describing (see `base.Autoencoder`).

`registry` lists them with the options each adds; `vae_tf.make_model` builds any of them.
"""

from vae_tf.models.ae import AE
from vae_tf.models.base import Autoencoder
from vae_tf.models.fitting import STEPS_PER_EXECUTION
from vae_tf.models.cvae import CVAE
from vae_tf.models.flowvae import FlowVAE
from vae_tf.models.infovae import InfoVAE
from vae_tf.models.iwae import IWAE
from vae_tf.models.tcvae import TCVAE
from vae_tf.models.vae import VAE
from vae_tf.models.vqvae import VQVAE
from vae_tf.models.wae import WAE

__all__ = ["AE", "Autoencoder", "CVAE", "FlowVAE", "InfoVAE", "IWAE", "STEPS_PER_EXECUTION", "TCVAE", "VAE", "VQVAE", "WAE"]
