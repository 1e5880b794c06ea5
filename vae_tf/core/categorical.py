"""Categorical latents: the Gumbel-softmax (concrete) relaxation, its annealed temperature,
the exact KL to a uniform categorical, and the uniform categorical prior.

A code of N categorical variables with K categories each is a flat vector of N * K
entries, variable i in columns i*K .. i*K + K - 1: one-hot for a discrete draw, a point
of the simplex per variable for a relaxed one.

Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017, and
Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017: with g_k ~ Gumbel(0, 1),
one_hot(argmax_k(log pi_k + g_k)) is an exact draw from Categorical(pi) (the Gumbel-max
trick, Jang et al. eq. 1), and y = softmax((log pi + g) / tau) its differentiable
relaxation (eq. 2), one-hot as tau -> 0.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from vae_tf.core.layers import BETA, FREE_BITS, SavesNoisePosition
from vae_tf.core.priors import Prior

CATEGORIES = 10  # K of Jang et al.'s categorical VAE (20 variables x 10 categories, sec. 4.2)
# Their temperature schedule (sec. 4.2): tau = max(0.5, exp(-r t)) of the training step t,
# updated every N steps, N in {500, 1000} and r in {1e-5, 1e-4} chosen on validation data.
TEMPERATURE = 1.0  # tau_0, exp(-r t) at t = 0
TEMPERATURE_MIN = 0.5
ANNEAL_RATE = 1e-4  # the faster r: the floor is reached after ~6,900 steps, within a short run
ANNEAL_EVERY = 500

# Uniform draws stay in [TINY, 1), so the Gumbel noise -log(-log(u)) is finite.
_TINY = float(np.finfo("float32").tiny)


def _is_stateful(seed):
    return seed is None or isinstance(seed, (int, keras.random.SeedGenerator))


def gumbel_noise(shape, seed=None):
    """Gumbel(0, 1) noise, g = -log(-log(u)) with u ~ Uniform(0, 1).

    Args:
        shape: tuple. Shape of the draw.
        seed: None, int, `keras.random.SeedGenerator`, or a stateless seed (a pair of
            ints or an int tensor of shape (2,), as in exported graphs). An int or a
            stateless seed gives the same draw every time.

    Returns:
        A float32 tensor of `shape`.
    """
    if _is_stateful(seed):
        u = keras.random.uniform(shape, minval=_TINY, maxval=1.0, seed=seed)
    else:
        u = tf.random.stateless_uniform(shape, seed=tf.cast(seed, "int64"), minval=_TINY, maxval=1.0)
    return -ops.log(-ops.log(u))


@tf.function(jit_compile=True, reduce_retracing=True)
def _xla_philox_uniform(shape, seed):
    return tf.random.stateless_uniform(shape, seed=seed, minval=_TINY, maxval=1.0, alg="philox")


def training_gumbel_noise(shape, seed_generator):
    """Gumbel(0, 1) noise of a training step, from uniforms drawn by XLA's Philox generator,
    as `vae_tf.core.layers.training_noise` draws normal noise: Keras's loop and the compiled
    one then train identically from the same seed."""
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)
    return -ops.log(-ops.log(_xla_philox_uniform(tf.cast(shape, tf.int32), seed)))


def log_probabilities(logits, categories):
    """log q per variable: flat logits (batch, N * K) -> log-softmax (batch, N, K)."""
    logits = ops.cast(logits, "float32")
    return ops.log_softmax(ops.reshape(logits, (-1, logits.shape[-1] // categories, categories)), axis=-1)


def one_hot_draws(log_probs, seed=None, num_samples=None):
    """Exact categorical draws by the Gumbel-max trick: one_hot(argmax(log pi + g)).

    Args:
        log_probs: tensor (..., K). Log-probabilities (or logits) of each variable.
        seed: seed as `gumbel_noise` takes it. Defaults to None.
        num_samples: int or None. None draws one per variable; S draws S, with a leading
            axis of S. Defaults to None.

    Returns:
        A float32 one-hot tensor of `log_probs`' shape (with the leading S).
    """
    shape = ops.shape(log_probs) if num_samples is None else (num_samples, *ops.shape(log_probs))
    winners = ops.argmax(log_probs + gumbel_noise(shape, seed), axis=-1)
    return ops.one_hot(winners, log_probs.shape[-1])


def relaxed_draws(log_probs, noise, temperature, straight_through=False):
    """The Gumbel-softmax sample y = softmax((log pi + g) / tau) (Jang et al. eq. 2).

    Args:
        log_probs: tensor (..., K). Log-probabilities of each variable.
        noise: tensor of the same shape. Gumbel(0, 1) noise g.
        temperature: float or scalar tensor. tau > 0.
        straight_through: bool. Return one_hot(argmax y) with the gradient of y (the
            Straight-Through Gumbel estimator, Jang et al. sec. 2.2). Defaults to False.

    Returns:
        A float32 tensor of `log_probs`' shape, each row on the simplex.
    """
    y = ops.softmax((log_probs + noise) / temperature, axis=-1)
    if not straight_through:
        return y
    hard = ops.one_hot(ops.argmax(y, axis=-1), log_probs.shape[-1])
    return y + ops.stop_gradient(hard - y)


def uniform_kl(log_probs):
    """KL(q || uniform over K) per variable, exactly: sum_k q_k log q_k + log K, in nats.

    Args:
        log_probs: tensor (..., K). Log-probabilities of each variable.

    Returns:
        A tensor of `log_probs`' shape without the last axis: 0 for a uniform q, log K
        for a one-hot q.
    """
    categories = log_probs.shape[-1]
    return ops.sum(ops.exp(log_probs) * log_probs, axis=-1) + math.log(categories)


def annealed_temperature(step, temperature=TEMPERATURE, minimum=TEMPERATURE_MIN, rate=ANNEAL_RATE,
                         every=ANNEAL_EVERY):
    """tau = max(minimum, temperature * exp(-rate * t)), t the step rounded down to a
    multiple of `every` (Jang et al. sec. 4.2: updated every N steps; their tau_0 is 1)."""
    t = ops.cast(ops.floor_divide(ops.cast(step, "int64"), every) * every, "float32")
    return ops.maximum(minimum, temperature * ops.exp(-rate * t))


def _check_relaxation(categories, temperature, temperature_min, anneal_rate, anneal_every):
    if not isinstance(categories, int) or categories < 2:
        raise ValueError(f"categories must be an integer >= 2, got {categories!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not 0 < temperature_min <= temperature:
        raise ValueError(f"temperature_min must be > 0 and <= temperature ({temperature}), got {temperature_min!r}")
    if not anneal_rate >= 0:
        raise ValueError(f"anneal_rate must be >= 0, got {anneal_rate!r}")
    if not isinstance(anneal_every, int) or anneal_every < 1:
        raise ValueError(f"anneal_every must be an integer >= 1, got {anneal_every!r}")


@keras.saving.register_keras_serializable(package="vae_tf")
class GumbelSoftmax(SavesNoisePosition, keras.layers.Layer):
    """Draws a categorical code from flat logits and adds the KL to a uniform prior as a loss.

    In training, the relaxed sample softmax((log q + g) / tau) (Jang et al. eq. 2), or
    with `straight_through` its one-hot argmax with the relaxed gradient (sec. 2.2);
    otherwise an exact one-hot draw (the Gumbel-max trick; evaluation is on discrete
    samples, as in the paper, sec. 4). The added loss is `beta * sum_i max(mean_batch(
    KL_i), free_bits)`, KL_i = KL(q_i || uniform over K) of variable i, exact.

    The temperature tau is the non-trainable variable `self.temperature`, set by
    `anneal(step)` to `annealed_temperature(step, ...)`; it is saved with the weights.

    Args:
        categories: int. K, categories per variable, >= 2; the logits' width must be a
            multiple. Defaults to 10.
        temperature: float. tau_0 of the schedule, > 0. Defaults to 1.0.
        temperature_min: float. The schedule's floor, in (0, temperature]. Defaults to 0.5.
        anneal_rate: float. r, >= 0 (0 keeps tau_0). Defaults to 1e-4.
        anneal_every: int. N, steps between updates, >= 1. Defaults to 500.
        straight_through: bool. One-hot samples in training too. Defaults to False.
        beta: float. KL weight, in the non-trainable variable `self.beta`. Defaults to 1.0.
        free_bits: float. Per-variable KL floor in nats; 0 turns it off. Defaults to 0.0.
        seed: int or None. Seed of the layer's `SeedGenerator`. Defaults to None.

    Example:

    >>> logits = keras.Input((20 * 10,))
    >>> y = GumbelSoftmax(categories=10)(logits)   # 20 variables of 10 categories
    """

    def __init__(self, categories=CATEGORIES, temperature=TEMPERATURE, temperature_min=TEMPERATURE_MIN,
                 anneal_rate=ANNEAL_RATE, anneal_every=ANNEAL_EVERY, straight_through=False, beta=BETA,
                 free_bits=FREE_BITS, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_relaxation(categories, temperature, temperature_min, anneal_rate, anneal_every)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0, got {free_bits}")
        self.categories = categories
        self.initial_temperature = float(temperature)
        self.temperature_min = float(temperature_min)
        self.anneal_rate = float(anneal_rate)
        self.anneal_every = anneal_every
        self.straight_through = bool(straight_through)
        self.free_bits = float(free_bits)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.beta = self.add_weight(name="beta", shape=(), initializer=keras.initializers.Constant(beta),
                                    trainable=False)
        # Assigned inside the training step: one replica's value stands for all.
        self.temperature = self.add_weight(
            name="temperature", shape=(), initializer=keras.initializers.Constant(temperature),
            trainable=False, aggregation="only_first_replica")

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None or width % self.categories:
            raise ValueError(f"the logits' width must be a multiple of categories ({self.categories}), got {width}")

    def anneal(self, step):
        """Sets and returns the temperature of training step `step` (an int tensor)."""
        value = annealed_temperature(step, self.initial_temperature, self.temperature_min,
                                     self.anneal_rate, self.anneal_every)
        self.temperature.assign(value)
        return value

    def call(self, logits, training=False):
        log_probs = log_probabilities(logits, self.categories)
        kl_per_variable = ops.mean(uniform_kl(log_probs), axis=0)
        self.add_loss(self.beta * ops.sum(ops.maximum(kl_per_variable, self.free_bits)))
        if training:
            noise = training_gumbel_noise(ops.shape(log_probs), self.seed_generator)
            draws = relaxed_draws(log_probs, noise, self.temperature, self.straight_through)
        else:
            draws = one_hot_draws(log_probs, self.seed_generator)
        return ops.reshape(draws, ops.shape(logits))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "categories": self.categories,
            "temperature": self.initial_temperature,
            "temperature_min": self.temperature_min,
            "anneal_rate": self.anneal_rate,
            "anneal_every": self.anneal_every,
            "straight_through": self.straight_through,
            "beta": float(ops.convert_to_numpy(self.beta)),
            "free_bits": self.free_bits,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="vae_tf")
class UniformCategorical(Prior):
    """The uniform prior over N categorical variables of K categories, as flat one-hot codes.

    Args:
        num_variables: int. N, >= 1.
        categories: int. K, >= 2.

    Example:

    >>> prior = UniformCategorical(20, 10)
    >>> prior.sample(4).shape   # (4, 200), one 1 in each block of 10
    """

    def __init__(self, num_variables, categories, **kwargs):
        if not isinstance(categories, int) or categories < 2:
            raise ValueError(f"categories must be an integer >= 2, got {categories!r}")
        if not isinstance(num_variables, int) or num_variables < 1:
            raise ValueError(f"num_variables must be an integer >= 1, got {num_variables!r}")
        kwargs.pop("latent_dim", None)  # from Prior's config: N * K
        super().__init__(num_variables * categories, **kwargs)
        self.num_variables = num_variables
        self.categories = categories
        self.built = True

    def log_prob(self, z):
        """log p(z) = -N log K for a one-hot code z (..., N * K)."""
        return -ops.sum(z, axis=-1) * math.log(self.categories)

    def sample(self, num_samples, seed=None):
        uniform = ops.zeros((self.num_variables, self.categories))
        return ops.reshape(one_hot_draws(uniform, seed, num_samples), (num_samples, self.latent_dim))

    def kl(self, z_mean, z_log_var, z):
        raise NotImplementedError("a categorical posterior's KL is uniform_kl of its log-probabilities")

    def get_config(self):
        return {**super().get_config(), "num_variables": self.num_variables, "categories": self.categories}
