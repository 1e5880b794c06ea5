"""A gated PixelCNN: an autoregressive prior over grids of discrete codes.

VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning") generates
images by fitting an autoregressive prior p(c) = prod_i p(c_i | c_<i) to the code grids
of the training set and decoding its samples. This prior is the gated PixelCNN of van
den Oord et al. (2016), "Conditional Image Generation with PixelCNN Decoders"
(arXiv:1606.05328), section 2 and figure 2:

- a vertical stack sees the rows above (its features, shifted down one row, feed the
  horizontal stack), and a horizontal stack sees the current row left of the position,
  which removes the "blind spot" of a single masked stack;
- the first horizontal convolution excludes the position itself (mask A), later ones
  include it (mask B); the masks are realized as shifted convolutions of size
  (k//2 + 1, k) and (1, k//2 + 1), so no weight is ever masked out;
- gated activations tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h), with an optional
  class one-hot h (their eq. 4-5), and residual connections in the horizontal stack;
- a softmax over the K code values at every position.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from vae_tf.core.layers import OneHot

STACKS = ("vertical", "horizontal")
FILTERS = 64  # channels of the gated layers
NUM_LAYERS = 5  # gated layers after the first


@keras.saving.register_keras_serializable(package="vae_tf")
class CausalConv2D(keras.layers.Layer):
    """A convolution whose output at (r, c) sees only earlier rows or earlier columns.

    "vertical": a (k//2 + 1, k) kernel over rows r - k//2 .. r and columns c - k//2 ..
    c + k//2. "horizontal": a (1, k//2 + 1) kernel over columns c - k//2 .. c of row r
    (mask B), or c - k//2 - 1 .. c - 1 with `include_centre=False` (mask A).

    Args:
        filters: int. Output channels.
        kernel_size: int. Odd size k of the equivalent square masked kernel.
        stack: str. "vertical" or "horizontal".
        include_centre: bool. Horizontal only: whether (r, c) sees itself (mask B) or
            not (mask A). Defaults to True.

    Example:

    >>> CausalConv2D(64, 7, "horizontal", include_centre=False)(x)  # mask A
    """

    def __init__(self, filters, kernel_size, stack, include_centre=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive integer, got {kernel_size!r}")
        if stack not in STACKS:
            raise ValueError(f"stack must be one of {STACKS}, got {stack!r}")
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.stack = stack
        self.include_centre = bool(include_centre)

    def build(self, input_shape):
        half = self.kernel_size // 2
        shape = (half + 1, self.kernel_size) if self.stack == "vertical" else (1, half + 1)
        self.kernel = self.add_weight(
            name="kernel", shape=(*shape, input_shape[-1], self.filters),
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        half = self.kernel_size // 2
        if self.stack == "vertical":
            x = ops.pad(x, ((0, 0), (half, 0), (half, half), (0, 0)))
        elif self.include_centre:
            x = ops.pad(x, ((0, 0), (0, 0), (half, 0), (0, 0)))
        else:  # shift right by one column so (r, c) sees only columns < c
            x = ops.pad(x, ((0, 0), (0, 0), (half + 1, 0), (0, 0)))[:, :, :-1, :]
        return ops.conv(x, self.kernel, padding="valid") + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "stack": self.stack,
            "include_centre": self.include_centre,
        }


def _gate(features):
    value, gate = ops.split(features, 2, axis=-1)
    return ops.tanh(value) * ops.sigmoid(gate)


def _shift_down(x):
    """Moves every row one down (zeros on top): row r then holds what row r - 1 saw."""
    return ops.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1, :, :]


@keras.saving.register_keras_serializable(package="vae_tf")
class PixelCNNPrior(keras.Model):
    """Gated PixelCNN over (H', W') grids of integer codes, optionally class-conditional.

    `fit` takes code grids (or `(codes, labels)` if conditional) and minimizes the
    negative log-likelihood; metrics: `nll` in nats per grid (summed over positions,
    averaged over grids) and `bits_per_dim`, nll / (H' W' ln 2).

    Args:
        num_embeddings: int. Number of code values K, >= 2.
        grid_shape: tuple (H', W'). Shape of one code grid.
        filters: int. Channels of the gated layers. Defaults to 64.
        num_layers: int. Gated layers (mask B) after the first (mask A). Defaults to 5.
        first_kernel_size: int. Odd kernel size of the first layer. Defaults to 7.
        kernel_size: int. Odd kernel size of the later layers. Defaults to 3.
        num_classes: int or None. Condition on an integer class label. Defaults to None.

    Example:

    >>> prior = PixelCNNPrior(num_embeddings=128, grid_shape=(7, 7))
    >>> prior.compile(); prior.fit(train_codes, epochs=10, batch_size=128)
    >>> codes = prior.sample_codes(16, seed=0)
    """

    def __init__(
        self,
        num_embeddings,
        grid_shape,
        filters=FILTERS,
        num_layers=NUM_LAYERS,
        first_kernel_size=7,
        kernel_size=3,
        num_classes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        grid_shape = tuple(grid_shape)
        if len(grid_shape) != 2 or not all(isinstance(d, int) and d >= 1 for d in grid_shape):
            raise ValueError(f"grid_shape must be two positive integers (H', W'), got {grid_shape}")
        for name, value, minimum in (
            ("num_embeddings", num_embeddings, 2), ("filters", filters, 1),
            ("num_layers", num_layers, 0),
        ):
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
            raise ValueError(f"num_classes must be an integer >= 2 or None, got {num_classes!r}")
        self.num_embeddings = num_embeddings
        self.grid_shape = grid_shape
        self.filters = filters
        self.num_layers = num_layers
        self.first_kernel_size = first_kernel_size
        self.kernel_size = kernel_size
        self.num_classes = num_classes

        self.embedding = layers.Embedding(num_embeddings, filters, name="code_embedding")
        sizes = [first_kernel_size] + [kernel_size] * num_layers
        self.vertical = [
            CausalConv2D(2 * filters, k, "vertical", name=f"vertical_{i}")
            for i, k in enumerate(sizes)
        ]
        self.horizontal = [
            CausalConv2D(2 * filters, k, "horizontal", include_centre=i > 0, name=f"horizontal_{i}")
            for i, k in enumerate(sizes)
        ]
        self.links = [layers.Conv2D(2 * filters, 1, name=f"link_{i}") for i in range(len(sizes))]
        self.mixes = [layers.Conv2D(filters, 1, name=f"mix_{i}") for i in range(len(sizes))]
        self.hidden = layers.Conv2D(filters, 1, activation="relu", name="hidden")
        self.out = layers.Conv2D(num_embeddings, 1, name="logits")
        if num_classes is not None:
            self.one_hot = OneHot(num_classes, name="label_one_hot")
            self.conditions = [
                layers.Dense(2 * filters, use_bias=False, name=f"condition_{i}")
                for i in range(num_layers + 1)
            ]
        self.nll_metric = keras.metrics.Mean(name="nll")
        self.bpd_metric = keras.metrics.Mean(name="bits_per_dim")
        self._build_all()

    def _build_all(self):
        height, width = self.grid_shape
        codes = ops.zeros((1, height, width), dtype="int32")
        labels = None if self.num_classes is None else ops.zeros((1,), dtype="int32")
        self.logits(codes, labels)
        self.built = True

    @property
    def is_conditional(self):
        return self.num_classes is not None

    @property
    def metrics(self):
        return [self.nll_metric, self.bpd_metric]

    # --- the network ----------------------------------------------------------------

    def _check_codes(self, codes):
        codes = ops.convert_to_tensor(codes)
        if "int" not in codes.dtype.name:
            raise ValueError(f"codes must be integers, got dtype {codes.dtype.name}")
        if tuple(codes.shape[1:]) != self.grid_shape or codes.shape.rank != 3:
            raise ValueError(
                f"codes have shape {tuple(codes.shape)}, but the prior expects "
                f"(batch, {self.grid_shape[0]}, {self.grid_shape[1]})"
            )
        return ops.cast(codes, "int32")

    def _check_labels(self, labels, batch):
        if self.num_classes is None:
            if labels is not None:
                raise ValueError("this prior is not conditional: pass no labels")
            return None
        if labels is None:
            raise ValueError(
                f"this prior is conditional on {self.num_classes} classes: pass labels"
            )
        labels = ops.reshape(ops.cast(ops.convert_to_tensor(labels), "int32"), (-1,))
        if labels.shape[0] is not None and batch is not None and labels.shape[0] != batch:
            raise ValueError(
                f"labels has {labels.shape[0]} entries, expected one per grid ({batch})"
            )
        return labels

    def logits(self, codes, labels=None, training=False):
        """Returns logits (batch, H', W', K): position i sees only codes before i.

        Args:
            codes: int tensor (batch, H', W').
            labels: int tensor (batch,) or None. Class ids if conditional.
            training: bool. Unused (no dropout); kept for Keras's call convention.

        Returns:
            A float tensor of logits over the K code values.
        """
        codes = self._check_codes(codes)
        labels = self._check_labels(labels, codes.shape[0])
        biases = [0.0] * (self.num_layers + 1)
        if labels is not None:
            one_hot = self.one_hot(labels)
            biases = [dense(one_hot)[:, None, None, :] for dense in self.conditions]
        vertical = horizontal = self.embedding(codes)
        layers_ = zip(self.vertical, self.horizontal, self.links, self.mixes, biases)
        for i, (v_conv, h_conv, link, mix, bias) in enumerate(layers_):
            v_features = v_conv(vertical)
            h_features = h_conv(horizontal) + link(_shift_down(v_features))
            vertical = _gate(v_features + bias)
            update = mix(_gate(h_features + bias))
            # No residual around the first layer: its input holds the position's own code.
            horizontal = update if i == 0 else horizontal + update
        return self.out(self.hidden(horizontal))

    def call(self, inputs, training=False):
        codes, labels = inputs if self.is_conditional else (inputs, None)
        return self.logits(codes, labels, training=training)

    def per_example_nll(self, codes, labels=None):
        """Returns -log p(codes) per grid in nats (summed over positions), shape (batch,)."""
        codes = self._check_codes(codes)
        logits = self.logits(codes, labels)
        nll = keras.losses.sparse_categorical_crossentropy(codes, logits, from_logits=True)
        return ops.sum(ops.reshape(nll, (ops.shape(nll)[0], -1)), axis=-1)

    # --- training -----------------------------------------------------------------

    def _split_data(self, data):
        codes, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.is_conditional and labels is None:
            raise ValueError("a conditional prior trains on (codes, labels) pairs")
        return codes, labels if self.is_conditional else None

    def _record(self, nll):
        self.nll_metric.update_state(nll)
        self.bpd_metric.update_state(nll / (math.prod(self.grid_shape) * math.log(2.0)))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        codes, labels = self._split_data(data)
        with tf.GradientTape() as tape:
            nll = ops.mean(self.per_example_nll(codes, labels))
            loss = nll / tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._record(nll)

    def test_step(self, data):
        codes, labels = self._split_data(data)
        return self._record(ops.mean(self.per_example_nll(codes, labels)))

    def compile(self, optimizer=None, **kwargs):
        """Configures training: Adam with learning rate 1e-3 unless `optimizer` is given."""
        super().compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), **kwargs)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    # --- ancestral sampling ---------------------------------------------------------

    def fill_position(self, codes, position, seed, temperature=1.0, labels=None):
        """Draws the code at raster `position` of every grid, given the codes before it.

        The draw is `tf.random.stateless_categorical` seeded with (seed, position), so
        a seed fixes every draw of a sampling run.

        Args:
            codes: int32 tensor (batch, H', W'). Positions before `position` are used.
            position: int32 scalar. Raster index row * W' + column.
            seed: int32 scalar.
            temperature: float scalar > 0. Divides the logits. Defaults to 1.0.
            labels: int32 tensor (batch,) or None.

        Returns:
            `codes` with `position` filled in.
        """
        height, width = self.grid_shape
        logits = self.logits(codes, labels)
        logits = ops.reshape(logits, (-1, height * width, self.num_embeddings))
        logits = tf.gather(logits, position, axis=1) / ops.cast(temperature, logits.dtype)
        draw = tf.random.stateless_categorical(
            logits, 1, seed=tf.stack([tf.cast(seed, tf.int32), tf.cast(position, tf.int32)]),
            dtype=tf.int32,
        )
        here = ops.reshape(ops.one_hot(position, height * width, dtype="int32"), (height, width))
        return codes * (1 - here) + draw[:, :, None] * here

    def _start(self, num_samples, temperature, labels):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if labels is not None and self.is_conditional and np.ndim(labels) == 0:
            labels = np.full((num_samples,), labels, dtype="int32")
        labels = self._check_labels(labels, num_samples)
        return ops.zeros((num_samples, *self.grid_shape), dtype="int32"), labels

    def sample_codes(self, num_samples, seed=0, temperature=1.0, labels=None, progress=None):
        """Draws code grids position by position (H' x W' network evaluations).

        Args:
            num_samples: int. Number of grids, >= 1.
            seed: int. Fixes every draw: the same seed gives the same grids. Defaults to 0.
            temperature: float > 0. Below 1 sharpens, above 1 flattens p(c_i | c_<i).
                Defaults to 1.0.
            labels: int, array of num_samples ints, or None. Classes if conditional.
            progress: callable or None. Called as `progress(done, total)` after each
                position, e.g. to advance a progress bar. Defaults to None.

        Returns:
            An int32 tensor (num_samples, H', W').

        Example:

        >>> codes = prior.sample_codes(16, seed=3, progress=lambda i, n: bar.update(1))
        """
        codes, labels = self._start(num_samples, temperature, labels)
        step = tf.function(self.fill_position)
        total = math.prod(self.grid_shape)
        seed = tf.constant(seed, tf.int32)
        temperature = tf.constant(temperature, tf.float32)
        for position in range(total):
            codes = step(codes, tf.constant(position, tf.int32), seed, temperature, labels)
            if progress is not None:
                progress(position + 1, total)
        return codes

    def sample_codes_graph(self, num_samples, seed, temperature=1.0, labels=None):
        """The same draws as `sample_codes`, as one `tf.while_loop` (for exported graphs)."""
        codes = tf.zeros(tf.stack([num_samples, *self.grid_shape]), tf.int32)
        total = math.prod(self.grid_shape)
        _, codes = tf.while_loop(
            lambda position, _: position < total,
            lambda position, c: (
                position + 1, self.fill_position(c, position, seed, temperature, labels)
            ),
            (tf.constant(0), codes),
        )
        return codes

    def get_config(self):
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "grid_shape": self.grid_shape,
            "filters": self.filters,
            "num_layers": self.num_layers,
            "first_kernel_size": self.first_kernel_size,
            "kernel_size": self.kernel_size,
            "num_classes": self.num_classes,
        }
