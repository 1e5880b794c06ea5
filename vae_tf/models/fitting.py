"""How every model meets Keras's loops: input checks at the door, `fit` of gathered
batches, the compiled and worker loops, and `compile`'s choices.

`Autoencoder` inherits this; nothing here depends on the family. What a model computes
(its loss terms, `train_step`, `test_step`) lives in `vae_tf.models.base`.
"""

import contextlib
import weakref

import keras
import numpy as np
import tensorflow as tf

from vae_tf.core.optimizers import FusedAdam
from vae_tf.data import IndexedBatches, read_ahead
from vae_tf.models.loops import checks, compiled_loop, worker_loop
from vae_tf.runtime import compat
from vae_tf.runtime.cpu import cpu_has_avx512
from vae_tf.runtime.distribute import endless, is_distributed, spans_workers

# Chosen with `vae-tf benchmark` (README, Performance): several steps per call cut
# Keras's per-step Python overhead, and give the compiled loop its length.
STEPS_PER_EXECUTION = 32
# Layers whose XLA code runs far slower than oneDNN's on a CPU (README, Performance).
CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv1DTranspose,
                keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose, keras.layers.SeparableConv1D,
                keras.layers.SeparableConv2D, keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def _xla_is_faster_here():
    """Whether XLA trained dense networks faster than TensorFlow's own kernels on this
    kind of machine: one without a GPU (not measured) whose CPU has AVX-512 (on an AVX2
    CPU it was 2x slower; README, Performance)."""
    return not tf.config.list_physical_devices("GPU") and bool(cpu_has_avx512())


def _all_layers(layer):
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _all_layers(child)


class KerasLoops(compat.BuiltAtConstruction, keras.Model):
    """The Keras-loop half of `vae_tf.models.base.Autoencoder` (see there)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.compiles_training_loop = False
        self._jit_compile_asked = "auto"
        self._batches_checked_outside = False
        self._endless_validation = False  # within `fit`: validation is `distribute.endless`
        self.gathered_examples = None  # within `fit` of IndexedBatches: what the loop gathers from
        self._examples_checked = []  # weak references to the last examples checked, once for every epoch

    def _check_at_door(self, data, split):
        """Host-side checks of NumPy inputs, and of a dataset's element_spec
        (`vae_tf.models.loops.checks`), before any graph runs."""
        if data is None:
            return
        if isinstance(data, tf.data.Dataset):
            checks.check_element_spec(self, data, split)
            return
        images, labels = split(data)
        checks.check_images(self, images)
        checks.check_labels(self, labels)

    def _checked_batch(self, data):
        """(images, labels) of a batch in the train or test step, after `checks.graph_checks`
        (done already, on the whole stack, when the compiled loop runs the step)."""
        if self._batches_checked_outside:
            return self._split_data(data)
        return checks.graph_checks(self, *self._split_data(data))

    @contextlib.contextmanager
    def _tracing_checked_batches(self):
        """Steps traced inside this block skip `checks.graph_checks`: the compiled
        loop checks its batches before its XLA program, which cannot hold the checks."""
        self._batches_checked_outside = True
        try:
            yield
        finally:
            self._batches_checked_outside = False

    @property
    def reads_one_iterator(self):
        """Whether `fit` reads a finite dataset through one iterator for all its epochs:
        under a distribution strategy with one step per execution (see `fit`)."""
        return is_distributed(self.distribute_strategy) and int(self.steps_per_execution) == 1

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras's `fit`, after the input checks. A tf.data dataset is read in its own
        order: `shuffle` defaults to False for one, which Keras cannot shuffle.

        Under a distribution strategy with one step per execution, finite datasets given
        as `x` and `validation_data=` are repeated, with their lengths as the steps per
        epoch (`distribute.endless`), and each is read through one distributed iterator
        for the whole call: Keras would make two per epoch.

        `x` may be `vae_tf.data.IndexedBatches`: where the training loop is compiled
        (`compiles_training_loop`), the examples stay in memory and each step's batch
        is gathered inside the loop's XLA program (`compiled_loop`), after one check of
        all the examples here; elsewhere, or with `steps_per_epoch`, `fit` reads
        `x.dataset()`. Every epoch reads the batches of `x.indices` once more.
        NumPy arrays are fitted that way too, where the loop is compiled and nothing
        but `batch_size`, `shuffle` and keywords of no concern to batching (epochs,
        callbacks, validation_data, ...) is asked for: batches of `batch_size` (32 by
        default), reshuffled every epoch unless `shuffle=False`, as Keras batches them."""
        try:
            if self._gathers_arrays(x, y, args, kwargs):
                x, y = self._indexed_arrays(x, y, kwargs), None
            if isinstance(x, IndexedBatches):
                x, kwargs = self._gathering_input(x, y, args, kwargs)
            else:
                self._check_at_door(x if y is None else (x, y), self._split_data)
            if isinstance(x, tf.data.Dataset) and not args:
                # Keras cannot shuffle a dataset, and warns about its own default if not told.
                kwargs.setdefault("shuffle", False)
            if self.reads_one_iterator and not args:
                if y is None and kwargs.get("steps_per_epoch") is None:
                    x, kwargs["steps_per_epoch"] = endless(x)
                if kwargs.get("validation_steps") is None:
                    kwargs["validation_data"], kwargs["validation_steps"] = endless(kwargs.get("validation_data"))
                    self._endless_validation = kwargs["validation_steps"] is not None
            with checks.first_line_from_graph():
                return super().fit(x, y, *args, **kwargs)
        finally:
            self._endless_validation = False
            self.gathered_examples = None

    def _gathers_arrays(self, x, y, args, kwargs):
        """Whether `fit(x, y, *args, **kwargs)` fits NumPy arrays as IndexedBatches."""
        batching = ("sample_weight", "class_weight", "steps_per_epoch")
        return self.compiles_training_loop and isinstance(x, np.ndarray) and len(x) > 0 \
            and (y is None or isinstance(y, np.ndarray) and len(y) == len(x)) and not args \
            and all(kwargs.get(name) is None for name in batching) and not kwargs.get("validation_split") \
            and kwargs.get("shuffle", True) in (True, False)

    def _indexed_arrays(self, x, y, kwargs):
        """IndexedBatches of what the model reads of `x` and `y`, checked here, taking
        `batch_size` and `shuffle` out of `kwargs` (validation keeps `batch_size`, as in
        Keras); floating-point arrays become float32, as Keras converts them."""
        self._check_at_door((x, y), self._split_data)
        batch_size = kwargs.pop("batch_size", None)
        kwargs.setdefault("validation_batch_size", batch_size)
        order = tf.data.Dataset.range(len(x))
        if kwargs.pop("shuffle", True):
            order = order.shuffle(len(x), reshuffle_each_iteration=True)
        arrays = tuple(a for a in self._split_data((x, y)) if a is not None)
        examples = tuple(tf.constant(a, tf.float32 if a.dtype.kind == "f" else None) for a in arrays)
        self._examples_checked = [weakref.ref(t) for t in examples]
        return IndexedBatches(examples, order.batch(batch_size or 32))

    def _gathering_input(self, batches, y, args, kwargs):
        """(x, kwargs) for Keras's `fit` of `IndexedBatches`: each element of x is one
        execution's index vectors (the last of an epoch padded with -1), repeated for
        every epoch, with the batches per epoch as `steps_per_epoch`; or, where the
        loop does not gather, `batches.dataset()` with `kwargs` unchanged."""
        steps = int(batches.indices.cardinality())
        dataset = batches.dataset()
        self._check_at_door(dataset, self._split_data)
        lengths = [int(t.shape[0]) for t in batches.examples]
        if len(set(lengths)) != 1:
            raise ValueError(f"IndexedBatches examples differ in length: {lengths}")
        if not self.compiles_training_loop or y is not None or args or steps < 1 \
                or kwargs.get("steps_per_epoch") is not None:
            return dataset, kwargs
        checked = self._examples_checked
        if len(checked) != len(batches.examples) or any(ref() is not t for ref, t in zip(checked, batches.examples)):
            self._check_at_door(tuple(t.numpy() for t in batches.examples), self._split_data)
            self._examples_checked = [weakref.ref(t) for t in batches.examples]
        self.gathered_examples = tuple(part for part in self._split_data(batches.examples) if part is not None)
        padding = tf.constant(-1, batches.indices.element_spec.dtype)
        if batches.keys is None:
            stacks = batches.indices.padded_batch(self.steps_per_execution, padding_values=padding)
        else:  # each execution's index vectors and their batches' binarization keys
            stacks = tf.data.Dataset.zip(batches.indices, batches.keys).padded_batch(
                self.steps_per_execution, padding_values=(padding, tf.constant(0, tf.int64)))
        return read_ahead(stacks.repeat()), dict(kwargs, steps_per_epoch=steps)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_at_door(x if y is None else (x, y), self._split_data)
        if compat.is_fit_validation(kwargs) and self._endless_validation:
            compat.continue_validation_iterator(self)
        with checks.first_line_from_graph():
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        # A dataset's elements are what `predict_step` unpacks; arrays are the inputs themselves.
        self._check_at_door(x if isinstance(x, tf.data.Dataset) else (x,), self._split_predict_data)
        with checks.first_line_from_graph():
            return super().predict(x, *args, **kwargs)

    def compile(self, optimizer=None, steps_per_execution=None, jit_compile="auto", **kwargs):
        """Configures training: `FusedAdam` (Adam in one kernel per weight) with learning
        rate 1e-3 unless `optimizer` is given.

        `steps_per_execution` defaults to `STEPS_PER_EXECUTION` training steps per call
        into the TensorFlow graph on one device (the same updates as one step per call,
        with less Python overhead; callbacks see batches in groups of that size), and
        to 1 under a distribution strategy, where Keras's multi-step loop fails on
        distributed iterators (Keras 3.15).

        `jit_compile`: True compiles each execution's training steps as one XLA program
        (`vae_tf.models.loops.compiled_loop`) when the networks have no convolutions, there
        are several steps per execution, no distribution strategy and no `run_eagerly`;
        "auto" (the default) does so where XLA was measured faster (no GPU, a CPU with
        AVX-512); False never.
        Keras's own per-step XLA is never used: it cannot compile the in-graph input
        checks (`vae_tf.models.loops.checks`).
        """
        if optimizer is None:
            optimizer = FusedAdam(learning_rate=1e-3)
        if steps_per_execution is None:
            distributed = self.distribute_strategy.num_replicas_in_sync > 1
            steps_per_execution = 1 if distributed else STEPS_PER_EXECUTION
        wants_xla = jit_compile is True or (jit_compile == "auto" and _xla_is_faster_here())
        self.compiles_training_loop = wants_xla and steps_per_execution > 1 \
            and not is_distributed(self.distribute_strategy) and not kwargs.get("run_eagerly") \
            and not any(isinstance(layer, CONVOLUTIONS) for layer in _all_layers(self))
        super().compile(optimizer=optimizer, steps_per_execution=steps_per_execution,
                        jit_compile=False, **kwargs)
        self._jit_compile_asked = jit_compile

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        if spans_workers(self.distribute_strategy):
            self.train_function = worker_loop.make_function(self, self.train_step)
        elif self.compiles_training_loop and not self.run_eagerly:
            self.train_function = compiled_loop.make_train_function(self)
        else:
            return super().make_train_function(force)
        return self.train_function

    def make_test_function(self, force=False):
        if not spans_workers(self.distribute_strategy):
            return super().make_test_function(force)
        if self.test_function is None or force:
            self.test_function = worker_loop.make_function(self, self.test_step)
        return self.test_function

    def get_compile_config(self):
        # Keras saves the jit_compile it was given (always False, above); a reloaded
        # model decides afresh from what was asked.
        config = super().get_compile_config()
        if config is not None:
            config["jit_compile"] = self._jit_compile_asked
        return config

    def compile_from_config(self, config):
        # Keras skips this for models that override `compile`; restoring it means a
        # reloaded `.keras` model resumes training with its optimizer state.
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)
