"""Layers: the reparameterized Gaussian `Sampling` layer and label one-hot encoding."""

import keras
import tensorflow as tf
from keras import ops

# exp() of a log-variance outside this range overflows or underflows float32 arithmetic.
LOG_VAR_RANGE = (-20.0, 20.0)


def gaussian_kl(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, 1)) per latent dimension, in nats.

    Args:
        z_mean: tensor. Posterior means.
        z_log_var: tensor of the same shape. Posterior log-variances, clamped to
            `LOG_VAR_RANGE` exactly as `Sampling` clamps them.

    Returns:
        A tensor of the input shape.
    """
    z_log_var = ops.clip(z_log_var, *LOG_VAR_RANGE)
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)


@keras.saving.register_keras_serializable(package="vae_tf")
class Sampling(keras.layers.Layer):
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

    def __init__(self, beta=1.0, free_bits=0.0, seed=None, **kwargs):
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

    def call(self, inputs):
        z_mean, z_log_var = inputs
        kl_per_dim = ops.mean(gaussian_kl(z_mean, z_log_var), axis=0)
        self.add_loss(self.beta * ops.sum(ops.maximum(kl_per_dim, self.free_bits)))
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        std = ops.exp(0.5 * ops.clip(z_log_var, *LOG_VAR_RANGE))
        return z_mean + std * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    # The noise stream's position is saved with the weights, so a checkpoint restored
    # mid-training (BackupAndRestore) continues the same draws as an uninterrupted run.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[str(len(store))] = self.seed_generator.state

    def load_own_variables(self, store):
        state_key = str(len(self.weights))
        if state_key in store:
            self.seed_generator.state.assign(store[state_key])
        super().load_own_variables({k: store[k] for k in store.keys() if k != state_key})

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
