"""Training and test steps across worker processes, each step's logs averaged in one collective.

Under `MultiWorkerMirroredStrategy`, Keras (3.15) averages a step's logs with one
`strategy.reduce(MEAN, axis=0)` per log, which across processes is a sum and a count
all-reduce each. On loopback a collective costs about 2 ms, as much as the step's
arithmetic on a small model (README, Performance). Here each replica packs its logs
into one vector, and one MEAN all-reduce averages them: the same values, one collective.
"""

import tensorflow as tf


def make_function(model, step):
    """Returns Keras's `train_function(iterator)` or `test_function(iterator)`: one `step`
    (`model.train_step` or `model.test_step`) per call on every replica, and the logs'
    mean across replicas.

    Args:
        model: a compiled `vae_tf.models.base.Autoencoder` under a multi-worker strategy.
        step: the model's step function, called in each replica with one batch.

    Returns:
        A function taking a distributed iterator and returning the step's logs; at the
        end of the data it raises `tf.errors.OutOfRangeError`, which Keras's epoch
        iterator turns into the end of the epoch.
    """
    strategy = model.distribute_strategy
    layout = {}  # log name -> (shape, dtype), in packing order; filled while tracing

    def packed_step(data):
        logs = step(data)
        layout.clear()
        layout.update((name, (value.shape, value.dtype)) for name, value in logs.items())
        return tf.concat([tf.reshape(tf.cast(value, "float32"), [-1]) for value in logs.values()], 0)

    def function(iterator):
        mean = strategy.reduce("MEAN", strategy.run(packed_step, args=(next(iterator),)), axis=None)
        parts = tf.split(mean, [shape.num_elements() for shape, _ in layout.values()])
        return {name: tf.cast(tf.reshape(part, shape), dtype)
                for (name, (shape, dtype)), part in zip(layout.items(), parts)}

    return function if model.run_eagerly else tf.function(function, reduce_retracing=True)
