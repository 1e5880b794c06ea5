"""Maximum mean discrepancy (MMD) between two samples, with the kernels of the MMD
autoencoders (WAE-MMD, InfoVAE).

MMD_k(P, Q)^2 = E k(x, x') + E k(y, y') - 2 E k(x, y), x, x' ~ P, y, y' ~ Q, is zero
exactly when P = Q for a characteristic kernel k (the RBF and the inverse
multiquadratic kernel both are). `mmd` estimates it from two samples with the unbiased
U-statistic of Tolstikhin et al., "Wasserstein Auto-Encoders", ICLR 2018, Algorithm 2:

    1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
        - 2/(n m) sum_{i, j} k(x_i, y_j)

Its expectation is MMD^2 itself, so for two samples of one distribution it scatters
around 0 (it can be negative) with a spread that shrinks like 1/n.

Both kernels are functions of the squared distance with one scale C:

    "imq" (inverse multiquadratic)  k(x, y) = C / (C + ||x - y||^2)
    "rbf" (Gaussian)                k(x, y) = exp(-||x - y||^2 / C)

with C = 2 d sigma^2 for d-dimensional codes and a prior N(0, sigma^2 I): the WAE
paper's choice for the IMQ kernel (section 4), which is also the expected squared
distance between two prior draws. sigma^2 = 1 (the standard normal prior) throughout.
`multiscale=True` sums the kernel over the scales C * s, s in `SCALES`, as the WAE
authors' code does (the paper's text names one C).

Example:

>>> mmd(z_codes, prior_draws, kernel="imq")          # a scalar tensor
"""

import keras
from keras import ops

from vae_tf.core.layers import SavesNoisePosition, draw_normal, training_noise

KERNELS = ("imq", "rbf")
SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # of C, with multiscale=True (the WAE code's)
PRIOR_VARIANCE = 1.0  # sigma^2 of the prior N(0, sigma^2 I)


def kernel_scale(latent_dim, prior_variance=PRIOR_VARIANCE):
    """C = 2 d sigma^2, the kernels' scale for d-dimensional codes."""
    return 2.0 * latent_dim * prior_variance


def squared_distances(x, y):
    """||x_i - y_j||^2 for every pair: x (n, d), y (m, d) -> (n, m), never negative."""
    x, y = ops.cast(x, "float32"), ops.cast(y, "float32")
    return ops.sum(ops.square(x[:, None, :] - y[None, :, :]), axis=-1)


def kernel_matrix(x, y, kernel="imq", multiscale=False, prior_variance=PRIOR_VARIANCE):
    """k(x_i, y_j) for every pair, (n, m).

    Args:
        x: tensor (n, d).
        y: tensor (m, d).
        kernel: str. "imq" or "rbf". Defaults to "imq".
        multiscale: bool. Sum over the scales C * `SCALES`. Defaults to False.
        prior_variance: float. sigma^2 in C = 2 d sigma^2. Defaults to 1.0.

    Returns:
        A float32 tensor (n, m).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    distances = squared_distances(x, y)
    latent_dim = x.shape[-1] if x.shape[-1] is not None else y.shape[-1]
    if latent_dim is None:
        raise ValueError("kernel_matrix needs the codes' dimension d known when traced, got None")
    base = kernel_scale(latent_dim, prior_variance)
    total = 0.0
    for scale in SCALES if multiscale else (1.0,):
        c = base * scale
        total = total + (c / (c + distances) if kernel == "imq" else ops.exp(-distances / c))
    return total


def mmd(x, y, kernel="imq", multiscale=False, prior_variance=PRIOR_VARIANCE):
    """The unbiased (U-statistic) estimate of MMD_k(P, Q)^2 from x ~ P and y ~ Q.

    Args:
        x: tensor (n, d). A sample of P (e.g. a batch of codes), n >= 2.
        y: tensor (m, d). A sample of Q (e.g. draws from the prior), m >= 2.
        kernel, multiscale, prior_variance: as for `kernel_matrix`.

    Returns:
        A float32 scalar; 0 in expectation when P = Q, and possibly negative.
    """
    n = ops.cast(ops.shape(x)[0], "float32")
    m = ops.cast(ops.shape(y)[0], "float32")
    x, y = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
    if x.shape[-1] is None:  # the kernels' scale C needs d: take it from the other sample
        x = ops.reshape(x, (-1, y.shape[-1]))
    elif y.shape[-1] is None:
        y = ops.reshape(y, (-1, x.shape[-1]))

    def within(sample, count):
        k = kernel_matrix(sample, sample, kernel, multiscale, prior_variance)
        off_diagonal = ops.sum(k) - ops.sum(ops.diagonal(k))
        return off_diagonal / ops.maximum(count * (count - 1.0), 1.0)

    cross = ops.sum(kernel_matrix(x, y, kernel, multiscale, prior_variance)) / (n * m)
    return within(x, n) + within(y, m) - 2.0 * cross


@keras.saving.register_keras_serializable(package="vae_tf")
class PriorDraws(SavesNoisePosition, keras.layers.Layer):
    """Draws from the prior N(0, I) shaped like a batch of codes: the sample of p(z) an
    MMD compares the codes with.

    Training draws come from `vae_tf.core.layers.training_noise`, so Keras's loop and the
    compiled one draw the same. The position of the noise stream is saved with the
    weights (as the `Sampling` layer's), so a run resumed from a checkpoint draws on
    where it stopped.

    Args:
        seed: int or None. Seed of the layer's `SeedGenerator`. Defaults to None.

    Example:

    >>> draws = PriorDraws(seed=2)(codes, training=True)   # (batch, d), N(0, I)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, codes, training=False):
        shape = ops.shape(codes)
        draws = training_noise(shape, self.seed_generator) if training else draw_normal(shape, self.seed_generator)
        return ops.reshape(draws, (-1, codes.shape[-1])) if codes.shape[-1] is not None else draws

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
