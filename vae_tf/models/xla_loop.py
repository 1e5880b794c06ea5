"""Several training steps as one XLA-compiled loop, for models without convolutions.

Keras runs `steps_per_execution` steps as a TensorFlow while loop whose body is one
step: about 480 small ops each, which TensorFlow's executor schedules one by one. Here
the batches of one execution are taken from the iterator first, stacked, and the whole
loop over them is compiled by XLA, which fuses the element-wise ops (bias, activations,
the loss, their gradients) into a few kernels. `train_step` is unchanged, so the
updates are the same mathematics (`tests/test_benchmark.py` compares the weights with
plain Keras training). XLA's CPU convolutions are far slower than oneDNN's, and XLA
drops assertions such as the label checks of conditional models, so the models choose
this loop only where neither applies (`Autoencoder.trains_as_one_xla_loop`).
"""

import itertools

import keras
import tensorflow as tf

# Public convolution layers; XLA's CPU versions are slower than TensorFlow's oneDNN ones.
CONVOLUTIONS = tuple(
    getattr(keras.layers, name) for name in (
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    )
)


def has_convolutions(layers):
    """True if any of `layers` is a convolution layer."""
    return any(isinstance(layer, CONVOLUTIONS) for layer in layers)


def _runs_of_equal_shapes(batches):
    """Groups consecutive batches whose tensors have equal shapes (the last batch of an
    epoch is often smaller), so that each group stacks into one tensor per input."""
    def shapes(batch):
        return tuple(tuple(t.shape) for t in tf.nest.flatten(batch))

    return [list(run) for _, run in itertools.groupby(batches, key=shapes)]


def make_train_function(model, steps):
    """Returns the `train_function` Keras's `fit` calls once per execution.

    Args:
        model: keras.Model. Its `train_step` runs once per batch.
        steps: int. Batches taken from the iterator per call (`steps_per_execution`).

    Returns:
        A function of the iterator: runs up to `steps` training steps, returns the
        logs of the last one, and raises StopIteration when the iterator is empty.
    """

    @tf.function(jit_compile=True, reduce_retracing=True)
    def run_steps(stacked):
        def batch(i):
            return tf.nest.map_structure(lambda t: t[i], stacked)

        count = tf.shape(tf.nest.flatten(stacked)[0])[0]
        logs = model.train_step(batch(0))
        _, logs = tf.while_loop(
            lambda i, _: i < count,
            lambda i, _: (i + 1, model.train_step(batch(i))),
            (tf.constant(1), logs),
        )
        return logs

    def train_function(iterator):
        batches = list(itertools.islice(iterator, steps))
        if not batches:
            raise StopIteration
        for run in _runs_of_equal_shapes(batches):
            logs = run_steps(tf.nest.map_structure(lambda *ts: tf.stack(ts), *run))
        return logs

    return train_function
