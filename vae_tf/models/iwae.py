"""The importance-weighted autoencoder."""

import math

import keras
from keras import ops

from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.core.layers import BETA
from vae_tf.core import priors
from vae_tf.core.layers import reparameterize
from vae_tf.models import registry
from vae_tf.models.vae import VAE

# One Option for every family that has it (the two-layer HVAE too): one flag, one meaning.
TRAIN_SAMPLES = registry.Option("train_samples", int, 5, "importance samples K per example in training",
                                minimum=1)


@keras.saving.register_keras_serializable(package="vae_tf")
class IWAE(VAE):
    """Importance-weighted autoencoder: trains on the K-sample importance-weighted bound.

    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016,
    eq. 8: L_K(x) = E[log 1/K sum_k p(x, z_k) / q(z_k|x)], z_k ~ q(z|x). L_1 is the
    ELBO and L_K tightens towards log p(x) as K grows. `loss` is -L_K in nats per
    example; `reconstruction` and `kl` report the first draw's terms (the KL as the
    prior gives it: analytic for N(0, I)). The first draw is the encoder's Sampling
    layer's z, so K = 1 computes the VAE's single-sample ELBO estimate with the same
    noise. `beta` weighs log p(z) - log q(z|x) inside each weight (1, the default,
    is the paper's bound; a warm-up schedule may lower it).

    Args:
        encoder, decoder, likelihood, beta, seed, prior: as for `VAE`.
        train_samples: int. K, the importance samples per example in training, >= 1.
            Defaults to 5.

    Example:

    >>> iwae = make_model("iwae", "mlp", (28, 28, 1), 20, train_samples=5)
    >>> iwae.compile(); iwae.fit(x_train, epochs=10)
    """

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, beta=BETA, seed=None, prior=None,
                 train_samples=TRAIN_SAMPLES.default, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                         prior=prior, **kwargs)
        if not isinstance(train_samples, int) or train_samples < 1:
            raise ValueError(f"train_samples must be an integer >= 1, got {train_samples}")
        if self.sampling.free_bits:
            raise ValueError("free_bits does not apply to IWAE: its bound has no separate KL term")
        self.train_samples = train_samples

    def compute_terms(self, x, labels=None, training=False):
        x = self._check_images(x)
        z_mean, z_log_var, z = self._posterior(x, labels, training)
        draws = ops.expand_dims(z, 0)
        if self.train_samples > 1:
            # The Sampling layer's generator: its state is saved with the weights.
            more = reparameterize(z_mean, z_log_var, self.sampling.seed_generator,
                                  self.train_samples - 1, training=training)
            draws = ops.concatenate([draws, more], axis=0)
        log_px, log_pz, log_qz = self.log_weight_parts(x, z_mean, z_log_var, draws, labels)
        log_w = log_px + self.beta * (log_pz - log_qz)
        bound = ops.logsumexp(log_w, axis=0) - math.log(self.train_samples)
        if self.prior.analytic_kl:
            kl = self.prior.kl(z_mean, z_log_var, z)
        else:  # the first draw's estimate, without evaluating a learned prior again
            kl = log_qz[0] - log_pz[0]
        return {"loss": -ops.mean(bound), "reconstruction": -ops.mean(log_px[0]), "kl": ops.mean(kl)}

    def get_config(self):
        return {**super().get_config(), "train_samples": self.train_samples}


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, train_samples,
           prior, prior_components):
    latent_dim = decoder.inputs[0].shape[-1]
    return IWAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                prior=priors.make(prior, latent_dim, input_shape, prior_components),
                train_samples=train_samples)


registry.register(registry.Family(
    name="iwae",
    summary="importance-weighted autoencoder: a tighter bound, better log-likelihoods",
    model_class=IWAE, variational=True, conditional=False, build=_build,
    options=(
        TRAIN_SAMPLES,
        *registry.PRIOR_OPTIONS,
    ),
))
