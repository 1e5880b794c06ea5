"""The training loop of one execution as one XLA program, for models without convolutions.

Keras runs `steps_per_execution` steps as a TensorFlow while loop that feeds each step
from the input iterator. A step of a small MLP is a few hundred tiny ops, and on a CPU
their dispatch costs more than their arithmetic (README, Performance). Here the
execution's batches are taken from the iterator first, stacked and checked once
(`checks.graph_checks` on the whole stack); then one XLA program runs the model's own
`train_step` on each batch in turn, so XLA fuses the element-wise work and nothing of
the framework runs between the steps. Same steps, same order, same batches: the same
updates as Keras's loop (tests/test_compiled_loop.py and tests/test_benchmark.py).

Given `IndexedBatches` (examples held in memory, batches named by index; see
`Autoencoder.fit`), the loop reads each execution's index vectors instead, and the XLA
program gathers every step's batch from the examples itself: no input pipeline and no
stacking between executions. `fit` checks the examples when it first sees them. A
dynamic binarization's noise is drawn per execution outside the program (XLA's random
bits differ from the kernel's tf.data uses) and compared with the gathered images inside.

Convolutional models keep Keras's loop: XLA's CPU convolutions are far slower than
oneDNN's (README, Performance).
"""

import itertools

import numpy as np
import tensorflow as tf

from vae_tf.data.pipeline import bernoulli_noise


def _shapes(batch):
    return tuple(tuple(t.shape) for t in tf.nest.flatten(batch))


def _padded(stack, steps):
    """`stack` with its last batch repeated up to `steps` batches: one program shape
    for every execution (the repeats are never run)."""
    count = tf.nest.flatten(stack)[0].shape[0]
    if count == steps:
        return stack
    return tf.nest.map_structure(lambda t: tf.concat([t, tf.repeat(t[-1:], steps - count, axis=0)], 0), stack)


def _check(check, stack, batches):
    """`check` (the model's `checks.graph_checks`) once for the whole stack; when it
    fails, batch by batch, so the error names the index in the batch that failed."""
    try:
        check(stack)
    except tf.errors.InvalidArgumentError:
        for batch in batches:
            check(batch)
        raise


def _index_runs(stack, count):
    """The runs of one execution's index vectors (`stack`, one row per batch, short rows
    padded with -1) into `count` examples: consecutive rows of one length, as
    (row slice, length) pairs.

    Raises:
        ValueError: an index is outside [0, count), where XLA's gather would clamp it.
    """
    indices = stack.numpy()
    sizes = np.sum(indices >= 0, axis=1)
    padding = np.arange(indices.shape[1]) >= sizes[:, None]
    valid, pad = indices[~padding], indices[padding]
    bad = np.concatenate([valid[(valid < 0) | (valid >= count)], pad[pad != -1]])
    if bad.size:
        raise ValueError(f"IndexedBatches: index {bad[0]} is outside the {count} examples")
    runs, start = [], 0
    for size, rows in itertools.groupby(sizes):
        rows = len(list(rows))
        runs.append((slice(start, start + rows), int(size)))
        start += rows
    return runs


def make_train_function(model):
    """Returns Keras's `train_function(iterator)` for `model`, one XLA program per execution.

    Args:
        model: a compiled `vae_tf.models.base.Autoencoder`. While it fits
            `IndexedBatches`, `model.gathered_examples` holds their examples and the
            iterator yields one execution's index vectors at a time.

    Returns:
        A function taking the epoch's iterator and returning the last step's logs; it
        raises StopIteration when the iterator is exhausted, as Keras's does.
    """
    steps = model.steps_per_execution

    @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
    def run_steps(stack, count, examples=None, noise=None):
        def step(i):
            if examples is None:
                return model.train_step(tf.nest.map_structure(lambda t: t[i], stack))
            images, *rest = (tf.gather(t, stack[i]) for t in examples)
            if noise is not None:  # a dynamic binarization's draw (`IndexedBatches.keys`)
                images = tf.cast(noise[i] < images, images.dtype)
            return model.train_step((images, *rest))

        # The loop's first value: what every family's train_step returns (`_record`).
        logs = {metric.name: metric.result() for metric in model.metrics}
        with model._tracing_checked_batches():
            _, logs = tf.while_loop(lambda i, _: i < count, lambda i, _: (i + 1, step(i)),
                                    (tf.constant(0), logs))
        return logs

    check = tf.function(model._checked_batch, reduce_retracing=True)  # as in Keras's loop

    def train_gathered(iterator):
        try:
            stack = iterator.get_next()
        except tf.errors.OutOfRangeError:
            raise StopIteration
        stack, keys = stack if isinstance(stack, tuple) else (stack, None)
        images = model.gathered_examples[0]
        logs = None
        for rows, size in _index_runs(stack, int(images.shape[0])):
            run, noise = stack[rows, :size], None
            if keys is not None:  # drawn here: XLA's random bits differ from tf.data's
                shape = (size, *images.shape[1:])
                noise = _padded(tf.stack([bernoulli_noise(shape, key) for key in keys[rows]]), steps)
            logs = run_steps(_padded(run, steps), tf.constant(run.shape[0]), model.gathered_examples, noise)
        return logs

    def train_function(iterator):
        if model.gathered_examples is not None:
            return train_gathered(iterator)
        batches = []
        try:
            while len(batches) < steps:
                batches.append(iterator.get_next())
        except tf.errors.OutOfRangeError:
            pass  # the epoch's last execution
        if not batches:
            raise StopIteration
        # Only what train_step reads goes into the program: the images, and the labels
        # if the model takes them (not targets, sample weights or strings it ignores).
        batches = [tuple(part for part in model._split_data(batch) if part is not None) for batch in batches]
        # An epoch's last batch may be smaller: batches of one shape are stacked together.
        runs = [list(run) for _, run in itertools.groupby(batches, key=_shapes)]
        stacks = [tf.nest.map_structure(lambda *parts: tf.stack(parts), *run) for run in runs]
        for stack, run in zip(stacks, runs):
            _check(check, stack, run)  # every batch, before any step
        logs = None
        for stack, run in zip(stacks, runs):
            logs = run_steps(_padded(stack, steps), tf.constant(len(run)))
        return logs

    return train_function
