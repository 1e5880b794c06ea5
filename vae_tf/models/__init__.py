"""Model families, one module each, all self-describing (see `base.Autoencoder`).

`registry` lists them with the options each adds; `vae_tf.make_model` builds any of them.
"""

from vae_tf.models.ae import AE
from vae_tf.models.annealedvae import AnnealedVAE
from vae_tf.models.base import Autoencoder
from vae_tf.models.fitting import STEPS_PER_EXECUTION
from vae_tf.models.cvae import CVAE
from vae_tf.models.factorvae import FactorVAE
from vae_tf.models.gumbel import GumbelVAE
from vae_tf.models.dipvae import DIPVAE
from vae_tf.models.hvae import HVAE
from vae_tf.models.flowvae import FlowVAE
from vae_tf.models.infovae import InfoVAE
from vae_tf.models.iwae import IWAE
from vae_tf.models.tcvae import TCVAE
from vae_tf.models.vae import VAE
from vae_tf.models.vqvae import VQVAE
from vae_tf.models.wae import WAE

__all__ = ["AE", "AnnealedVAE", "Autoencoder", "CVAE", "DIPVAE", "FactorVAE", "FlowVAE", "GumbelVAE", "HVAE", "InfoVAE", "IWAE", "STEPS_PER_EXECUTION", "TCVAE", "VAE", "VQVAE", "WAE"]
