"""Vector quantization: the discrete bottleneck of VQ-VAE.

Implements the quantizer of van den Oord, Vinyals and Kavukcuoglu (2017), "Neural
Discrete Representation Learning" (arXiv:1711.00937): each encoder vector z_e is
replaced by its nearest codebook entry e_k (eq. 1-2), gradients pass straight through
(the decoder's gradient is copied to z_e), and the loss adds (eq. 3)

    ||sg[z_e] - e||^2  (codebook)   +   beta * ||z_e - sg[e]||^2  (commitment).

The exponential-moving-average codebook of the paper's appendix A.1 replaces the
codebook term, with Laplace smoothing of the cluster sizes as in Razavi, van den Oord
and Vinyals (2019), "Generating Diverse High-Fidelity Images with VQ-VAE-2".
Codes left unused for `restart_after` training steps are re-initialized from encoder
outputs of the current batch (dead-code restarts), so the codebook stays in use.
"""

import math

import keras
import tensorflow as tf
from keras import ops

COMMITMENT = 0.25  # the commitment weight beta (the paper's)
EMA = False  # codebook updated by gradients unless asked for moving averages


def _positive_int(name, value, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _across_replicas(values, how):
    """`values` summed ("sum") or concatenated ("gather") over the replicas of a
    tf.distribute step, so every replica updates the codebook from the global batch;
    unchanged outside one."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    if how == "sum":
        return context.all_reduce(tf.distribute.ReduceOp.SUM, values)
    return context.all_gather(values, axis=0)


def codebook_statistics(codes, num_embeddings):
    """Returns the perplexity and the fraction of codes used by a batch of codes.

    Perplexity is exp(entropy) of the average code assignment: 1 when every vector
    picks one code, `num_embeddings` when all codes are picked equally often. In a
    tf.distribute step, both are of the global batch.

    Args:
        codes: int tensor of any shape. Code indices.
        num_embeddings: int. Codebook size.

    Returns:
        A dict with scalar tensors `perplexity` and `codebook_usage` (in [0, 1]).

    Example:

    >>> codebook_statistics(np.array([0, 1, 1, 3]), 4)["codebook_usage"]  # 0.75
    """
    counts = ops.bincount(ops.reshape(ops.cast(codes, "int32"), (-1,)), minlength=num_embeddings)
    counts = _across_replicas(ops.cast(counts[:num_embeddings], "float32"), "sum")
    probs = counts / ops.maximum(ops.sum(counts), 1.0)
    entropy = -ops.sum(ops.where(probs > 0, probs * ops.log(ops.maximum(probs, 1e-30)), 0.0))
    return {
        "perplexity": ops.exp(entropy),
        "codebook_usage": ops.mean(ops.cast(counts > 0, "float32")),
    }


@keras.saving.register_keras_serializable(package="vae_tf")
class VectorQuantizer(keras.layers.Layer):
    """Replaces each vector of the last axis by its nearest codebook entry.

    Called on z_e of shape (..., embedding_dim), returns a dict:
    `quantized` (z_q in value, z_e in gradient: the straight-through estimator),
    `codes` (int32, shape z_e.shape[:-1]) and `vq_loss` (per example, summed over all
    positions and dimensions: codebook + beta * commitment, or beta * commitment
    alone with `ema=True`). Its batch mean is also added with `add_loss`.

    With `training=True` the EMA codebook (if `ema`) and the dead-code restarts (if
    `restart_after`) update the layer's variables.

    Args:
        num_embeddings: int. Codebook size K, >= 2.
        embedding_dim: int. Dimension D of each code vector, >= 1.
        beta: float. Commitment weight, >= 0. Defaults to `COMMITMENT`.
        ema: bool. Update the codebook by exponential moving averages instead of
            gradients. Defaults to False.
        decay: float in [0, 1). EMA decay gamma. Defaults to 0.99.
        epsilon: float > 0. Laplace smoothing of the EMA cluster sizes. Defaults to 1e-5.
        restart_after: int. Training steps a code may go unused before it is
            re-initialized from a random encoder output of the current batch; 0 turns
            restarts off. Defaults to 100.
        seed: int or None. Seed for the codebook initializer and restart draws.
            Defaults to None.

    Example:

    >>> vq = VectorQuantizer(num_embeddings=128, embedding_dim=16)
    >>> out = vq(keras.random.normal((8, 7, 7, 16)))
    >>> out["codes"].shape  # (8, 7, 7)
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        beta=COMMITMENT,
        ema=EMA,
        decay=0.99,
        epsilon=1e-5,
        restart_after=100,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # distances lose too much in 16-bit floats
        super().__init__(**kwargs)
        self.num_embeddings = _positive_int("num_embeddings", num_embeddings, minimum=2)
        self.embedding_dim = _positive_int("embedding_dim", embedding_dim)
        self.restart_after = _positive_int("restart_after", restart_after, minimum=0)
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.beta = float(beta)
        self.ema = bool(ema)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        shape = (self.num_embeddings, self.embedding_dim)
        limit = math.sqrt(3.0 / self.embedding_dim)  # unit-variance vectors, like z_e at init
        self.codebook = self.add_weight(
            name="codebook",
            shape=shape,
            initializer=keras.initializers.RandomUniform(-limit, limit, seed=seed),
            trainable=not self.ema,
            aggregation="mean",
        )
        # Updated only with `assign`, to the same value on every replica (`update_codebook`).
        state = dict(trainable=False, aggregation="mean")
        self.unused_steps = self.add_weight(
            name="unused_steps", shape=(self.num_embeddings,), initializer="zeros", **state
        )
        if self.ema:
            # Starting from N_k = 1, m_k = e_k, a code no batch picks keeps its vector.
            self.ema_cluster_size = self.add_weight(
                name="ema_cluster_size", shape=(self.num_embeddings,), initializer="ones", **state
            )
            self.ema_sum = self.add_weight(
                name="ema_sum", shape=shape, initializer="zeros", **state
            )
            self.ema_sum.assign(self.codebook)
        self.built = True

    # --- the pieces -------------------------------------------------------------

    def nearest_codes(self, z_e):
        """Returns the int32 index of the nearest codebook entry of each vector of z_e."""
        flat = ops.reshape(ops.cast(z_e, "float32"), (-1, self.embedding_dim))
        distances = (
            ops.sum(ops.square(flat), axis=1, keepdims=True)
            - 2.0 * ops.matmul(flat, ops.transpose(self.codebook))
            + ops.sum(ops.square(self.codebook), axis=1)[None, :]
        )
        codes = ops.cast(ops.argmin(distances, axis=1), "int32")
        return ops.reshape(codes, ops.shape(z_e)[:-1])

    def lookup(self, codes):
        """Returns the codebook vectors of int codes: shape codes.shape + (embedding_dim,)."""
        return ops.take(self.codebook, ops.cast(codes, "int32"), axis=0)

    def _per_example_sum(self, values):
        return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)

    def call(self, z_e, training=False):
        z_e = ops.cast(z_e, "float32")
        codes = self.nearest_codes(z_e)
        z_q = self.lookup(codes)
        commitment = self._per_example_sum(ops.square(z_e - ops.stop_gradient(z_q)))
        vq_loss = self.beta * commitment
        if not self.ema:
            vq_loss += self._per_example_sum(ops.square(ops.stop_gradient(z_e) - z_q))
        self.add_loss(ops.mean(vq_loss))
        if training:
            self.update_codebook(z_e, codes)
        quantized = z_e + ops.stop_gradient(z_q - z_e)
        return {"quantized": quantized, "codes": codes, "vq_loss": vq_loss}

    def update_codebook(self, z_e, codes):
        """One training step's codebook update: EMA (if `ema`), then dead-code restarts.

        EMA (appendix A.1), with n_k the batch count and s_k the batch sum of code k:
        N_k <- decay N_k + (1 - decay) n_k;  m_k <- decay m_k + (1 - decay) s_k;
        e_k = m_k / N~_k, where N~_k = (N_k + epsilon) / (N + K epsilon) * N, N = sum N_k.
        Under tf.distribute, n_k, s_k and the restart candidates are those of the global
        batch, so every replica computes the same codebook as one device would.
        """
        flat = ops.stop_gradient(ops.reshape(ops.cast(z_e, "float32"), (-1, self.embedding_dim)))
        one_hot = ops.one_hot(ops.reshape(codes, (-1,)), self.num_embeddings)
        counts = _across_replicas(ops.sum(one_hot, axis=0), "sum")
        if self.ema:
            sums = _across_replicas(ops.matmul(ops.transpose(one_hot), flat), "sum")
            cluster_size = self.decay * self.ema_cluster_size + (1 - self.decay) * counts
            ema_sum = self.decay * self.ema_sum + (1 - self.decay) * sums
            total = ops.sum(cluster_size)
            smoothed = (
                (cluster_size + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
            )
            self.ema_cluster_size.assign(cluster_size)
            self.ema_sum.assign(ema_sum)
            self.codebook.assign(ema_sum / smoothed[:, None])
        if self.restart_after:
            self._restart_dead_codes(_across_replicas(flat, "gather"), counts)

    def _restart_dead_codes(self, flat, counts):
        unused = ops.where(counts > 0, 0.0, self.unused_steps + 1.0)
        dead = unused >= self.restart_after
        picks = keras.random.randint(
            (self.num_embeddings,), 0, ops.shape(flat)[0], seed=self.seed_generator
        )
        fresh = ops.take(flat, picks, axis=0)
        self.codebook.assign(ops.where(dead[:, None], fresh, self.codebook))
        if self.ema:
            self.ema_sum.assign(ops.where(dead[:, None], fresh, self.ema_sum))
            self.ema_cluster_size.assign(ops.where(dead, 1.0, self.ema_cluster_size))
        self.unused_steps.assign(ops.where(dead, 0.0, unused))

    def compute_output_spec(self, z_e, training=False):
        grid = z_e.shape[:-1]
        return {
            "quantized": keras.KerasTensor(z_e.shape, dtype="float32"),
            "codes": keras.KerasTensor(grid, dtype="int32"),
            "vq_loss": keras.KerasTensor(z_e.shape[:1], dtype="float32"),
        }

    # The restart stream's position is saved with the weights, so a restored
    # checkpoint continues the same draws.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[str(len(store))] = self.seed_generator.state

    def load_own_variables(self, store):
        state_key = str(len(self.weights))
        if state_key in store:
            self.seed_generator.state.assign(store[state_key])
        super().load_own_variables({k: store[k] for k in store.keys() if k != state_key})

    def get_config(self):
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "beta": self.beta,
            "ema": self.ema,
            "decay": self.decay,
            "epsilon": self.epsilon,
            "restart_after": self.restart_after,
            "seed": self.seed,
        }
