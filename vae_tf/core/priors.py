"""Priors p(z): one interface, `log_prob(z)` and `sample(num_samples, seed)`, that the
KL term, importance weighting and sampling all use.

`StandardNormal` keeps the analytic KL exact (`analytic_kl = True`); a learned prior
such as `VampPrior` has no closed-form KL, so models estimate it by Monte Carlo with
the posterior draw z: log q(z|x) - log p(z).
"""

import math

import keras
from keras import ops

from vae_tf.core.layers import clamp_log_var, draw_categorical, draw_normal, gaussian_kl, split_seed

VAMP_COMPONENTS = 500  # the VampPrior's pseudo-inputs K (the paper's)

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(z, mean, log_var):
    """log N(z; mean, exp(log_var)) summed over the last axis, in nats.

    Args:
        z: tensor (..., latent_dim). Points.
        mean: tensor broadcastable to z. Means.
        log_var: tensor broadcastable to z. Log-variances (clamped like `Sampling`'s).

    Returns:
        A tensor of z's shape without the last axis.
    """
    log_var = clamp_log_var(log_var)
    return ops.sum(-0.5 * (_LOG_2PI + log_var + ops.square(z - mean) / ops.exp(log_var)), axis=-1)


class Prior(keras.layers.Layer):
    """Base of priors over a `latent_dim`-dimensional z.

    Subclasses implement `log_prob` and `sample`; `kl` defaults to the Monte-Carlo
    estimate log q(z|x) - log p(z) at the posterior draw z.
    """

    analytic_kl = False

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim}")
        self.latent_dim = latent_dim

    def attach(self, posterior):
        """Gives the prior the model's posterior function, x -> (z_mean, z_log_var).

        Only priors built from the encoder (VampPrior) use it; it is kept as a plain
        function, so the encoder's weights are not tracked twice.
        """

    def log_prob(self, z):
        """Returns log p(z) in nats, one value per point: z (..., latent_dim) -> (...)."""
        raise NotImplementedError

    def sample(self, num_samples, seed=None):
        """Returns `num_samples` draws z ~ p(z), shape (num_samples, latent_dim).

        `seed`: None, int, `keras.random.SeedGenerator`, or a stateless seed pair or
        tensor (in exported graphs); an int or stateless seed repeats the draws.
        """
        raise NotImplementedError

    def kl(self, z_mean, z_log_var, z):
        """KL(q(z|x) || p(z)) per example: the Monte-Carlo estimate at the draw z."""
        return gaussian_log_prob(z, z_mean, z_log_var) - self.log_prob(z)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}


@keras.saving.register_keras_serializable(package="vae_tf")
class StandardNormal(Prior):
    """The standard normal prior N(0, I); its KL to a Gaussian posterior is analytic.

    Args:
        latent_dim: int. Size of z, >= 1.

    Example:

    >>> prior = StandardNormal(2)
    >>> prior.log_prob(np.zeros((1, 2)))  # -log(2 pi) = -1.8379
    """

    analytic_kl = True

    def __init__(self, latent_dim, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.built = True

    def log_prob(self, z):
        return ops.sum(-0.5 * (_LOG_2PI + ops.square(z)), axis=-1)

    def sample(self, num_samples, seed=None):
        return draw_normal((num_samples, self.latent_dim), seed)

    def kl(self, z_mean, z_log_var, z=None):
        """The exact KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example; z is unused."""
        return ops.sum(gaussian_kl(z_mean, z_log_var), axis=-1)


@keras.saving.register_keras_serializable(package="vae_tf")
class VampPrior(Prior):
    """The VampPrior: a mixture of the variational posteriors at K learned pseudo-inputs.

    p(z) = 1/K sum_k q(z | u_k) (Tomczak & Welling, "VAE with a VampPrior", AISTATS
    2018, eq. 9). The pseudo-inputs u_k are trainable weights shaped like images,
    kept in [0, 1] by a hard clip (the paper's hardtanh) and initialised near
    N(0.05, 0.01) as in the authors' code. Needs an unconditional encoder, which the
    model hands over with `attach`.

    Args:
        latent_dim: int. Size of z, >= 1.
        num_components: int. Number of pseudo-inputs K, >= 1. Defaults to `VAMP_COMPONENTS`.
        input_shape: tuple. Shape of one image.

    Example:

    >>> model = VAE(encoder, decoder, prior=VampPrior(20, input_shape=(28, 28, 1)))
    """

    def __init__(self, latent_dim, num_components=VAMP_COMPONENTS, input_shape=None, **kwargs):
        super().__init__(latent_dim, **kwargs)
        if not isinstance(num_components, int) or num_components < 1:
            raise ValueError(f"num_components must be an integer >= 1, got {num_components}")
        if input_shape is None:
            raise ValueError("VampPrior needs input_shape, the shape of one image")
        self.num_components = num_components
        self.pseudo_input_shape = tuple(input_shape)
        self.pseudo_inputs = self.add_weight(
            name="pseudo_inputs",
            shape=(num_components, *self.pseudo_input_shape),
            initializer=keras.initializers.RandomNormal(0.05, 0.01),
        )
        self.posterior = None
        self.built = True

    def attach(self, posterior):
        self.posterior = posterior

    def components(self):
        """Returns (means, log_vars) of the K mixture components, each (K, latent_dim)."""
        if self.posterior is None:
            raise ValueError("VampPrior is not attached to a model's encoder yet")
        return self.posterior(ops.clip(self.pseudo_inputs, 0.0, 1.0))

    def log_prob(self, z):
        means, log_vars = self.components()
        per_component = gaussian_log_prob(ops.expand_dims(z, -2), means, log_vars)  # (..., K)
        return ops.logsumexp(per_component, axis=-1) - math.log(self.num_components)

    def sample(self, num_samples, seed=None):
        component_seed, noise_seed = split_seed(seed)
        means, log_vars = self.components()
        chosen = draw_categorical(ops.zeros((self.num_components,)), num_samples, component_seed)
        mean, log_var = ops.take(means, chosen, axis=0), ops.take(log_vars, chosen, axis=0)
        noise = draw_normal((num_samples, self.latent_dim), noise_seed)
        return mean + ops.exp(0.5 * clamp_log_var(log_var)) * noise

    def get_config(self):
        return {
            **super().get_config(),
            "num_components": self.num_components,
            "input_shape": list(self.pseudo_input_shape),
        }


PRIORS = ("standard", "vamp")


def make(name, latent_dim, input_shape, num_components=VAMP_COMPONENTS):
    """Returns a prior by name: "standard" (N(0, I)) or "vamp" (a VampPrior).

    Args:
        name: str. "standard" or "vamp".
        latent_dim: int. Size of z.
        input_shape: tuple. Shape of one image (VampPrior pseudo-inputs).
        num_components: int. VampPrior pseudo-inputs K. Defaults to `VAMP_COMPONENTS`.

    Returns:
        A `Prior` layer.
    """
    if name == "standard":
        return StandardNormal(latent_dim)
    if name == "vamp":
        return VampPrior(latent_dim, num_components, input_shape)
    raise ValueError(f"prior must be one of {PRIORS}, got {name!r}")

