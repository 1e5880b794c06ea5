"""DIP-VAE-I and DIP-VAE-II: the VAE loss plus a penalty pulling a code covariance to I."""

import keras
from keras import ops

from vae_tf.core.layers import BETA, clamp_log_var
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.models import registry
from vae_tf.models.vae import VAE

DIP_TYPES = ("i", "ii")
LAMBDA_OD = 10.0
# lambda_d / lambda_od when lambda_d is not given: disentanglement_lib's `lambda_d_factor`
# in the study of Locatello et al. (2019) (config/unsupervised_study_v1/sweep.py), 10 for
# DIP-VAE-I and 1 for DIP-VAE-II. There lambda_od is swept over {1, 2, 5, 10, 20, 50}
# with no default; 10 is ours.
LAMBDA_D_FACTORS = {"i": 10.0, "ii": 1.0}


def default_lambda_d(dip_type, lambda_od):
    """lambda_d when it is not given: 10 * lambda_od for DIP-VAE-I, lambda_od for DIP-VAE-II."""
    return LAMBDA_D_FACTORS[dip_type] * lambda_od


def code_covariance(z_mean, z_log_var, dip_type):
    """The covariance DIP-VAE pulls to the identity, estimated on a batch.

    DIP-VAE-I: Cov_p(x)[mu(x)], the covariance of the posterior means. DIP-VAE-II:
    Cov_q(z)[z] = E_p(x)[diag sigma^2(x)] + Cov_p(x)[mu(x)], the covariance of the
    aggregate posterior q(z) (Kumar et al. 2018, section 3). Moments are batch averages
    (E[mu mu^T] - E[mu] E[mu]^T, dividing by B, as disentanglement_lib computes it);
    under a distribution strategy each replica estimates it on its share of the batch.

    Args:
        z_mean: tensor (batch, latent_dim). Posterior means mu(x).
        z_log_var: tensor (batch, latent_dim). Posterior log-variances log sigma^2(x).
        dip_type: str. "i" or "ii".

    Returns:
        A float32 (latent_dim, latent_dim) tensor.

    Example:

    >>> means = np.array([[1.0, 0.0], [-1.0, 0.0]], "float32")
    >>> code_covariance(means, np.zeros((2, 2), "float32"), "ii")   # [[2, 0], [0, 1]]
    """
    z_mean, z_log_var = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
    centred = z_mean - ops.mean(z_mean, axis=0, keepdims=True)
    covariance = ops.matmul(ops.transpose(centred), centred) / ops.cast(ops.shape(z_mean)[0], "float32")
    if dip_type == "ii":
        covariance = covariance + ops.diag(ops.mean(ops.exp(clamp_log_var(z_log_var)), axis=0))
    return covariance


def covariance_deviation(covariance):
    """How far a covariance is from the identity: (sum_{i != j} C_ij^2, sum_i (C_ii - 1)^2).

    Returns:
        The off-diagonal mass and the diagonal deviation, two scalars.
    """
    diagonal = ops.diagonal(covariance)
    off_diagonal = ops.sum(ops.square(covariance)) - ops.sum(ops.square(diagonal))
    return off_diagonal, ops.sum(ops.square(diagonal - 1.0))


@keras.saving.register_keras_serializable(package="vae_tf")
class DIPVAE(VAE):
    """DIP-VAE: the VAE loss + lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2.

    Kumar, Sattigeri & Balakrishnan, "Variational Inference of Disentangled Latent
    Concepts from Unlabeled Observations", ICLR 2018, section 3, eq. 6-9: C is the
    covariance of the posterior means (DIP-VAE-I) or of the aggregate posterior q(z)
    (DIP-VAE-II), estimated on each batch by `code_covariance`; the penalty pulls it to the
    identity, the covariance of the prior N(0, I), so that q(z) decorrelates like the
    prior. The VAE loss is reconstruction + beta * KL as for `VAE` (beta = 1: the negative
    ELBO the paper penalizes). `covariance_off_diagonal` (sum_{i != j} C_ij^2) and `covariance_diagonal`
    (sum_i (C_ii - 1)^2) are logged, unweighted.

    Args:
        encoder, decoder, likelihood, beta, seed: as for `VAE`.
        prior: None or a `StandardNormal`: the prior is N(0, I), whose covariance is I.
        dip_type: str. "i" (DIP-VAE-I) or "ii" (DIP-VAE-II). Defaults to "i".
        lambda_od: float. Weight of the off-diagonal term, >= 0. Defaults to 10.0.
        lambda_d: float or None. Weight of the diagonal term, >= 0; None is
            `default_lambda_d(dip_type, lambda_od)`: 10 * lambda_od for "i", lambda_od
            for "ii". Defaults to None.

    Example:

    >>> dip = make_model("dipvae", "conv", (64, 64, 1), 10, dip_type="ii", dip_lambda_od=5.0)
    >>> dip.lambda_d                                   # 5.0: lambda_od for DIP-VAE-II
    """

    loss_terms = ("loss", "reconstruction", "kl", "covariance_off_diagonal", "covariance_diagonal")

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, beta=BETA, seed=None, prior=None,
                 dip_type="i", lambda_od=LAMBDA_OD, lambda_d=None, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                         prior=prior, **kwargs)
        if not self.prior.analytic_kl:
            raise ValueError("DIP-VAE needs the standard normal prior: it pulls the code covariance to I")
        if dip_type not in DIP_TYPES:
            raise ValueError(f"dip_type must be one of {DIP_TYPES}, got {dip_type!r}")
        if not lambda_od >= 0:
            raise ValueError(f"lambda_od must be >= 0, got {lambda_od}")
        if lambda_d is None:
            lambda_d = default_lambda_d(dip_type, lambda_od)
        if not lambda_d >= 0:
            raise ValueError(f"lambda_d must be >= 0, got {lambda_d}")
        self.dip_type = dip_type
        self.lambda_od = float(lambda_od)
        self.lambda_d = float(lambda_d)

    def compute_terms(self, x, labels=None, training=False):
        (z_mean, z_log_var, _), terms = self._posterior_terms(x, labels, training)
        off_diagonal, diagonal = covariance_deviation(code_covariance(z_mean, z_log_var, self.dip_type))
        loss = terms["loss"] + self.lambda_od * off_diagonal + self.lambda_d * diagonal
        return {**terms, "loss": loss, "covariance_off_diagonal": off_diagonal, "covariance_diagonal": diagonal}

    def get_config(self):
        return {
            **super().get_config(),
            "dip_type": self.dip_type,
            "lambda_od": self.lambda_od,
            "lambda_d": self.lambda_d,
        }


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, dip_type,
           dip_lambda_od, dip_lambda_d):
    return DIPVAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed, dip_type=dip_type,
                  lambda_od=dip_lambda_od, lambda_d=dip_lambda_d)


registry.register(registry.Family(
    name="dipvae",
    summary="DIP-VAE-I/II: penalizes the code covariance's distance from I for disentangled factors",
    model_class=DIPVAE, variational=True, conditional=False, build=_build,
    options=(
        registry.Option("dip_type", str, "i",
                        "i: the covariance of the posterior means; ii: of the aggregate posterior q(z)",
                        choices=DIP_TYPES),
        registry.Option("dip_lambda_od", float, LAMBDA_OD,
                        "lambda_od, the weight of the covariance's squared off-diagonal entries",
                        minimum=0.0),
        registry.Option("dip_lambda_d", float, None,
                        "lambda_d, the weight of the squared deviations of its diagonal from 1",
                        minimum=0.0),
    ),
))
