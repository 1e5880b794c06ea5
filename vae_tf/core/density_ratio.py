"""The total correlation of a code by the density-ratio trick: a discriminator between
samples of q(z) and dimension-wise permuted samples, which stand for q̄(z) = prod_j q(z_j).

Kim & Mnih, "Disentangling by Factorising", ICML 2018, section 3:

    TC(z) = KL(q(z) || q̄(z)) = E_q(z)[log q(z) / q̄(z)] ≈ E_q(z)[log D(z) - log(1 - D(z))]

where D(z) is the probability a discriminator gives that z came from q(z) rather than
from q̄(z). Samples of q̄(z) come from a batch of samples of q(z) by permuting each
dimension independently across the batch (their Algorithm 1, `permute_dims`). The
discriminator outputs two logits, [from q(z), from q̄(z)], so log D - log(1 - D) is
the difference of the two logits (`total_correlation`), as in disentanglement_lib.

Example:

>>> discriminator = build_discriminator(latent_dim=10, layers=2, units=64)
>>> logits = discriminator(ops.concatenate([z, permute_dims(z, noise)]))
>>> terms = discriminator_terms(logits[:len(z)], logits[len(z):])
"""

import keras
from keras import ops

from vae_tf.core.layers import SavesNoisePosition, draw_normal, training_noise

# Kim & Mnih (2018), Appendix A, and disentanglement_lib's `fc_discriminator`: six hidden
# layers of 1000 units with leaky ReLU (slope 0.2) and two output logits.
DISCRIMINATOR_LAYERS = 6
DISCRIMINATOR_UNITS = 1000
LEAKY_SLOPE = 0.2
# The discriminator's Adam (Kim & Mnih 2018, Appendix A; disentanglement_lib's
# unsupervised_study_v1 shared.gin): learning rate 1e-4, beta_1 0.5, beta_2 0.9, epsilon 1e-8.
DISCRIMINATOR_LR = 1e-4
DISCRIMINATOR_BETAS = (0.5, 0.9)
DISCRIMINATOR_EPSILON = 1e-8


def permute_dims(z, noise):
    """Permutes each column of `z` across the batch, independently (Kim & Mnih 2018,
    Algorithm 1): the rows become samples of the product of the batch's marginals.

    Args:
        z: tensor (batch, latent_dim). Samples of q(z).
        noise: tensor of the same shape, independent continuous draws. Column j is
            permuted by the order of column j of `noise` (argsort), a uniformly random
            permutation of the batch whatever the noise's distribution.

    Returns:
        A tensor shaped like `z`: each column a permutation of the same column of `z`.
    """
    order = ops.argsort(noise, axis=0)
    return ops.take_along_axis(z, order, axis=0)


@keras.saving.register_keras_serializable(package="vae_tf")
class DimensionPermutation(SavesNoisePosition, keras.layers.Layer):
    """Permutes each latent dimension across the batch with fresh noise per call
    (`permute_dims`). A training call draws through `training_noise`, so Keras's loop and
    the compiled one permute alike; the position of the noise stream is saved with the
    weights, so a resumed run permutes on as an uninterrupted one.

    Args:
        seed: int or None. Seed of the layer's `SeedGenerator`. Defaults to None.

    Example:

    >>> permuted = DimensionPermutation(seed=2)(z, training=True)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, z, training=False):
        shape = ops.shape(z)
        noise = training_noise(shape, self.seed_generator) if training else draw_normal(shape, self.seed_generator)
        return permute_dims(z, ops.reshape(noise, shape))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_discriminator(latent_dim, layers=DISCRIMINATOR_LAYERS, units=DISCRIMINATOR_UNITS):
    """The MLP discriminator of Kim & Mnih (2018, Appendix A): `layers` dense layers of
    `units` with leaky ReLU (slope 0.2), then two logits, [from q(z), from q̄(z)].

    Args:
        latent_dim: int. Size of z, >= 1.
        layers: int. Hidden layers, >= 1. Defaults to 6, the paper's.
        units: int. Units per hidden layer, >= 1. Defaults to 1000, the paper's.

    Returns:
        A functional `keras.Model` named "discriminator", (batch, latent_dim) -> (batch, 2).
    """
    for name, value in (("latent_dim", latent_dim), ("discriminator_layers", layers),
                        ("discriminator_units", units)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    z = keras.Input((latent_dim,), name="z")
    h = z
    for i in range(layers):
        h = keras.layers.Dense(units, name=f"hidden_{i + 1}")(h)
        h = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"leaky_relu_{i + 1}")(h)
    logits = keras.layers.Dense(2, dtype="float32", name="logits")(h)
    return keras.Model(z, logits, name="discriminator")


def total_correlation(logits):
    """The density-ratio estimate of TC, mean over the batch of log D(z) - log(1 - D(z)),
    from the discriminator's logits of samples z of q(z): logit 0 less logit 1, in nats.

    Args:
        logits: tensor (batch, 2). The discriminator's logits of samples of q(z).

    Returns:
        A scalar tensor.
    """
    logits = ops.cast(logits, "float32")
    return ops.mean(logits[:, 0] - logits[:, 1])


def discriminator_terms(real_logits, permuted_logits):
    """The discriminator's loss and accuracy on samples of q(z) (class 0) and permuted
    samples (class 1).

    The loss is the cross-entropy averaged over the two sets, -1/2 (E log D(z) +
    E log(1 - D(z_perm))), from log-softmax (disentanglement_lib clips probabilities
    at 1e-6 instead). It is log 2 for a discriminator that outputs 1/2 everywhere.

    Args:
        real_logits: tensor (batch, 2). Logits of samples of q(z).
        permuted_logits: tensor (batch, 2). Logits of permuted samples.

    Returns:
        A dict of scalars: "discriminator_loss" (nats) and "discriminator_accuracy"
        (the fraction of both sets classified right, a tie counting as wrong).
    """
    real = ops.log_softmax(ops.cast(real_logits, "float32"), axis=-1)
    permuted = ops.log_softmax(ops.cast(permuted_logits, "float32"), axis=-1)
    loss = -0.5 * (ops.mean(real[:, 0]) + ops.mean(permuted[:, 1]))
    right = ops.concatenate([ops.cast(real[:, 0] > real[:, 1], "float32"),
                             ops.cast(permuted[:, 1] > permuted[:, 0], "float32")])
    return {"discriminator_loss": loss, "discriminator_accuracy": ops.mean(right)}
