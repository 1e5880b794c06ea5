"""Layers: the reparameterized Gaussian `Sampling` layer and label one-hot encoding,
with the one `reparameterize` every model, prior and evaluation shares."""

import keras
import tensorflow as tf
from keras import ops

from vae_tf.runtime import compat

BETA = 1.0  # the KL weight of the ELBO
FREE_BITS = 0.0  # no KL floor

# exp() of a log-variance outside this range overflows or underflows float32 arithmetic.
LOG_VAR_RANGE = (-20.0, 20.0)


def clamp_log_var(z_log_var):
    """Clamps log-variances to `LOG_VAR_RANGE`: the one clamp every density uses."""
    return ops.clip(z_log_var, *LOG_VAR_RANGE)


def _is_stateful(seed):
    return seed is None or isinstance(seed, (int, keras.random.SeedGenerator))


def split_seed(seed, count=2):
    """Returns `count` seeds for separate draws from one seed.

    Args:
        seed: None, int, `keras.random.SeedGenerator`, or a stateless seed (a pair of
            ints or an int tensor of shape (2,), as in exported graphs).
        count: int. Number of seeds. Defaults to 2.

    Returns:
        A list of `count` seeds: the generator itself (it advances per draw), or
        independent stateless seeds derived with `tf.random.experimental.stateless_split`.
    """
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return [seed] * count
    if isinstance(seed, int):
        seed = (seed, 0)
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, "int64"), count), num=count)


def draw_normal(shape, seed=None):
    """Standard-normal noise: `keras.random` for stateful seeds, stateless ops otherwise.

    Args:
        shape: tuple. Shape of the draw.
        seed: None, int, `keras.random.SeedGenerator` or a stateless seed pair/tensor.
            An int or a stateless seed gives the same draw every time.

    Returns:
        A float32 tensor of `shape`.
    """
    if _is_stateful(seed):
        return keras.random.normal(shape, seed=seed)
    return tf.random.stateless_normal(shape, seed=tf.cast(seed, "int64"))


def draw_categorical(logits, num_samples, seed=None):
    """Draws `num_samples` indices from one categorical distribution given by `logits` (K,)."""
    logits = ops.reshape(ops.cast(logits, "float32"), (1, -1))
    if _is_stateful(seed):
        return ops.reshape(keras.random.categorical(logits, num_samples, seed=seed), (-1,))
    return tf.reshape(
        tf.random.stateless_categorical(logits, num_samples, seed=tf.cast(seed, "int64")), (-1,)
    )


@tf.function(jit_compile=True, reduce_retracing=True)
def _xla_philox_normal(shape, seed):
    return tf.random.stateless_normal(shape, seed=seed, alg="philox")


def training_noise(shape, seed_generator):
    """N(0, I) noise for a training step, drawn by XLA's Philox generator.

    XLA's Philox gives other numbers than TensorFlow's kernel for the same seed, so
    the noise is drawn by XLA whether or not the step itself is compiled: Keras's
    training loop and the compiled one (`vae_tf.models.loops.compiled_loop`) then train
    identically from the same seed.

    Args:
        shape: tuple or int tensor. Shape of the draw.
        seed_generator: `keras.random.SeedGenerator`. Advanced by one draw.

    Returns:
        A float32 tensor of `shape`.
    """
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)
    return _xla_philox_normal(tf.cast(shape, tf.int32), seed)


def reparameterize(z_mean, z_log_var, seed=None, num_samples=None, training=False):
    """Draws z = z_mean + exp(z_log_var / 2) * eps, eps ~ N(0, I), differentiably.

    Args:
        z_mean: tensor (batch, latent_dim). Posterior means.
        z_log_var: tensor of the same shape. Posterior log-variances (clamped here).
        seed: seed as `draw_normal` takes it. Defaults to None.
        num_samples: int or None. None draws one z per row; K draws K, shape
            (K, batch, latent_dim). Defaults to None.
        training: bool. A training step's draw, through `training_noise` (`seed`
            must then be a `keras.random.SeedGenerator`). Defaults to False.

    Returns:
        A float32 tensor of z.

    Example:

    >>> z = reparameterize(z_mean, z_log_var, seed=keras.random.SeedGenerator(0))
    """
    shape = ops.shape(z_mean) if num_samples is None else (num_samples, *ops.shape(z_mean))
    noise = training_noise(shape, seed) if training else draw_normal(shape, seed)
    return z_mean + ops.exp(0.5 * clamp_log_var(z_log_var)) * noise


def gaussian_kl(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, 1)) per latent dimension, in nats.

    Args:
        z_mean: tensor. Posterior means.
        z_log_var: tensor of the same shape. Posterior log-variances, clamped to
            `LOG_VAR_RANGE` exactly as `Sampling` clamps them.

    Returns:
        A tensor of the input shape.
    """
    z_log_var = clamp_log_var(z_log_var)
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)


class SavesNoisePosition:
    """Mixin for a layer drawing noise from `self.seed_generator`: the generator's state
    (the noise stream's position) is saved with the weights, so a checkpoint restored
    mid-training continues the same draws as an uninterrupted run."""

    def save_own_variables(self, store):
        super().save_own_variables(store)
        compat.save_extra_variable(store, self.seed_generator.state)

    def load_own_variables(self, store):
        weights_store = compat.load_extra_variable(self, store, self.seed_generator.state)
        super().load_own_variables(weights_store)


@keras.saving.register_keras_serializable(package="vae_tf")
class Sampling(SavesNoisePosition, keras.layers.Layer):
    """Draws z = z_mean + exp(0.5 * z_log_var) * eps and adds the KL term as a loss.

    The added loss is `beta * sum_j max(mean_batch(KL_j), free_bits)`: the analytic
    KL(q(z|x) || N(0, I)) summed over latent dimensions and averaged over the batch,
    with an optional per-dimension floor ("free bits"), weighted by `beta`.

    Args:
        beta: float. KL weight, stored in the non-trainable variable `self.beta` so a
            callback can `assign` it during `fit`. Defaults to 1.0.
        free_bits: float. Per-dimension KL floor in nats; 0 turns it off. Defaults to 0.0.
        seed: int or None. Seed of the layer's `SeedGenerator`. Defaults to None.

    Example:

    >>> z_mean = keras.Input((2,)); z_log_var = keras.Input((2,))
    >>> z = Sampling()([z_mean, z_log_var])
    """

    def __init__(self, beta=BETA, free_bits=FREE_BITS, seed=None, **kwargs):
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0, got {free_bits}")
        self.free_bits = float(free_bits)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.beta = self.add_weight(
            name="beta",
            shape=(),
            initializer=keras.initializers.Constant(beta),
            trainable=False,
        )

    def call(self, inputs, training=False):
        z_mean, z_log_var = inputs
        kl_per_dim = ops.mean(gaussian_kl(z_mean, z_log_var), axis=0)
        self.add_loss(self.beta * ops.sum(ops.maximum(kl_per_dim, self.free_bits)))
        return reparameterize(z_mean, z_log_var, self.seed_generator, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            beta=float(ops.convert_to_numpy(self.beta)),
            free_bits=self.free_bits,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="vae_tf")
class OneHot(keras.layers.Layer):
    """One-hot encodes integer class ids, refusing ids outside `[0, num_classes)`.

    The range check runs eagerly and in graph mode; XLA (`jit_compile=True`) compiles
    assertions away, so validate labels before training there (`vae_tf.data` does).

    Args:
        num_classes: int. Number of classes, >= 2.

    Example:

    >>> OneHot(3)(np.array([0, 2]))  # [[1, 0, 0], [0, 0, 1]]
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = int(num_classes)

    def call(self, labels):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        message = f"labels must be integer class ids in [0, {self.num_classes})"
        checks = [
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, self.num_classes, message=message),
        ]
        with tf.control_dependencies(checks):
            return ops.one_hot(labels, self.num_classes)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
