"""beta-TCVAE: the KL split into index-code MI, total correlation and dimension-wise KL."""

import math

import keras
from keras import ops

from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.core.layers import BETA
from vae_tf.core import priors
from vae_tf.core.layers import clamp_log_var
from vae_tf.models import registry
from vae_tf.models.vae import VAE

ESTIMATORS = ("mss", "mws")
_LOG_2PI = math.log(2.0 * math.pi)


def _log_density_matrix(z, z_mean, z_log_var):
    """log q(z_i,d | x_j) per dimension: (batch_i, batch_j, latent_dim)."""
    log_var = clamp_log_var(z_log_var)[None, :, :]
    return -0.5 * (_LOG_2PI + log_var + ops.square(z[:, None, :] - z_mean[None, :, :]) / ops.exp(log_var))


def _log_weight_matrix(batch, dataset_size, estimator):
    """log r_ij, the weight of q(z_i | x_j) in the estimate of q(z_i).

    MWS (minibatch-weighted sampling, Chen et al. 2018, sec. 4.1): every weight
    1/(N B) for a batch of B. MSS (minibatch-stratified sampling, their appendix C):
    1/N for the example's own posterior, (N - M)/(N M) for one other (the stratum)
    and 1/M for the remaining M - 1, with M = B - 1; each row sums to 1 when N >= M.
    """
    batch_size = ops.cast(batch, "float32")
    n = float(dataset_size)
    if estimator == "mws":
        return ops.zeros((batch, batch)) - ops.log(n * batch_size)
    m = ops.maximum(batch_size - 1.0, 1.0)  # a batch of 1 has only its own posterior
    own = ops.eye(batch)
    stratum = ops.roll(own, 1, axis=1) * (1.0 - own)  # j = i + 1 (mod B)
    others = 1.0 - own - stratum
    return ops.log(own / n + stratum * ops.maximum(n - m, 0.0) / (n * m) + others / m)


def decompose_kl(z, z_mean, z_log_var, prior, dataset_size, estimator="mss"):
    """Splits the batch KL estimate into index-code MI, total correlation and dimension-wise KL.

    With q(z) estimated from the minibatch (Chen et al. 2018, sec. 4.1):
    MI = E[log q(z|x) - log q(z)], TC = E[log q(z) - sum_d log q(z_d)],
    dimension-wise KL = E[sum_d log q(z_d) - log p(z)]. Their sum is exactly the
    batch mean of the Monte-Carlo KL log q(z|x) - log p(z).

    Args:
        z: tensor (batch, latent_dim). One draw per example from q(z|x).
        z_mean, z_log_var: tensors (batch, latent_dim). The posteriors.
        prior: `vae_tf.core.priors.Prior`. The prior p(z).
        dataset_size: int. N, the number of training examples.
        estimator: str. "mss" or "mws". Defaults to "mss".

    Returns:
        A dict of scalars in nats per example: mutual_information, total_correlation,
        dimension_kl.
    """
    batch = ops.shape(z)[0]
    log_q_ij = _log_density_matrix(z, z_mean, z_log_var)
    log_r = _log_weight_matrix(batch, dataset_size, estimator)
    log_qz = ops.logsumexp(ops.sum(log_q_ij, axis=-1) + log_r, axis=1)
    log_q_marginals = ops.sum(ops.logsumexp(log_q_ij + log_r[:, :, None], axis=1), axis=-1)
    log_qz_x = priors.gaussian_log_prob(z, z_mean, z_log_var)
    log_pz = prior.log_prob(z)
    return {
        "mutual_information": ops.mean(log_qz_x - log_qz),
        "total_correlation": ops.mean(log_qz - log_q_marginals),
        "dimension_kl": ops.mean(log_q_marginals - log_pz),
    }


@keras.saving.register_keras_serializable(package="vae_tf")
class TCVAE(VAE):
    """beta-TCVAE: a VAE whose KL is split and whose total correlation is weighted.

    Chen, Li, Grosse & Duvenaud, "Isolating Sources of Disentanglement in VAEs",
    NeurIPS 2018, eq. 4: loss = reconstruction + alpha * MI + tc_weight * TC +
    gamma * dimension-wise KL, with alpha = gamma = `beta` (1 by default, the paper's
    choice; a warm-up schedule may lower it). The three terms come from
    `decompose_kl` on each minibatch and are reported as metrics with `kl` (the
    prior's KL: analytic for N(0, I)). The default estimator of q(z) is minibatch-
    stratified sampling (MSS), whose terms are meaningful numbers (TC near 0 for a
    factorized aggregate posterior). Minibatch-weighted sampling (MWS) gives the same
    gradients as the naive estimator but shifts the reported values by constants:
    MI by +log(N B), TC by (D - 1) log(N B), dimension-wise KL by -D log(N B).

    Args:
        encoder, decoder, likelihood, beta, seed, prior: as for `VAE`.
        tc_weight: float. Weight of the total correlation, >= 0; stored in the
            non-trainable variable `self.tc_weight`. Defaults to 6.0.
        dataset_size: int. N, the training-set size, >= 2. Defaults to 60000.
        estimator: str. "mss" (minibatch-stratified) or "mws" (minibatch-weighted
            sampling). Defaults to "mss".

    Example:

    >>> tcvae = make_model("tcvae", "mlp", (28, 28, 1), 10, tc_weight=6.0, dataset_size=60000)
    """

    loss_terms = ("loss", "reconstruction", "kl", "mutual_information", "total_correlation",
                  "dimension_kl")

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, beta=BETA, seed=None, prior=None,
                 tc_weight=6.0, dataset_size=60000, estimator="mss", **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                         prior=prior, **kwargs)
        if tc_weight < 0:
            raise ValueError(f"tc_weight must be >= 0, got {tc_weight}")
        if not isinstance(dataset_size, int) or dataset_size < 2:
            raise ValueError(f"dataset_size must be an integer >= 2, got {dataset_size}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if self.sampling.free_bits:
            raise ValueError("free_bits does not apply to TCVAE: its KL is split into three terms")
        self.dataset_size = dataset_size
        self.estimator = estimator
        self.tc_weight = self.add_weight(
            name="tc_weight", shape=(), initializer=keras.initializers.Constant(tc_weight),
            trainable=False,
        )

    def compute_terms(self, x, labels=None, training=False):
        x = self._check_images(x)
        z_mean, z_log_var, z = self._posterior(x, labels, training)
        reconstruction = ops.mean(self._decoder_nll(x, z, labels, training=training))
        parts = decompose_kl(z, z_mean, z_log_var, self.prior, self.dataset_size, self.estimator)
        loss = (reconstruction
                + self.beta * (parts["mutual_information"] + parts["dimension_kl"])
                + self.tc_weight * parts["total_correlation"])
        kl = ops.mean(self.prior.kl(z_mean, z_log_var, z))
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl, **parts}

    def get_config(self):
        return {
            **super().get_config(),
            "tc_weight": float(ops.convert_to_numpy(self.tc_weight)),
            "dataset_size": self.dataset_size,
            "estimator": self.estimator,
        }


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, tc_weight,
           dataset_size, tc_estimator, prior, prior_components):
    latent_dim = decoder.inputs[0].shape[-1]
    return TCVAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                 prior=priors.make(prior, latent_dim, input_shape, prior_components),
                 tc_weight=tc_weight, dataset_size=dataset_size, estimator=tc_estimator)


registry.register(registry.Family(
    name="tcvae",
    summary="beta-TCVAE: penalizes total correlation for disentangled factors",
    model_class=TCVAE, variational=True, conditional=False, build=_build,
    options=(
        registry.Option("tc_weight", float, 6.0, "weight of the total-correlation term",
                        minimum=0.0),
        registry.Option("dataset_size", int, 60000,
                        "training-set size N used by the q(z) estimator", minimum=2),
        registry.Option("tc_estimator", str, "mss",
                        "q(z) estimator: minibatch-stratified (mss) or -weighted (mws) sampling",
                        choices=ESTIMATORS),
        *registry.PRIOR_OPTIONS,
    ),
))
