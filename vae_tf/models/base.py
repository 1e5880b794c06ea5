"""The shared `keras.Model` of every family: self-description, steps, decoding, serialization.

Every model reports its loss terms in nats per example (summed over pixels and
latent dimensions, averaged over examples). One function per family,
`per_example_terms`, gives the per-example terms that evaluation, anomaly scores and
the export `score` signature read; `compute_terms` turns them into the batch terms
`train_step` and `test_step` record. The loss used for gradients is divided by the
number of replicas, because tf.distribute sums gradients across replicas.
"""

import contextlib
import copy
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from vae_tf.core import likelihoods
from vae_tf.runtime import compat
from vae_tf.runtime.cpu import cpu_has_avx512
from vae_tf.data import IndexedBatches, read_ahead
from vae_tf.runtime.distribute import endless, is_distributed, spans_workers
from vae_tf.models.loops import checks, compiled_loop, worker_loop
from vae_tf.core.optimizers import FusedAdam


def as_float(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


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


class Autoencoder(compat.BuiltAtConstruction, keras.Model):
    """Base of every family. Subclasses set the class attributes below and implement
    `encode` and `per_example_terms` (and override `compute_terms` when their training
    loss is more than the mean of those terms).

    What a model says about itself (read these instead of asking for its class):

    - `is_variational`: it has a posterior q(z|x) and a prior (`self.prior`), so
      ELBO, importance-weighted likelihoods and sampling apply.
    - `is_conditional`: it needs integer class labels (`num_classes` of them).
    - `can_sample`: `sample` works without a `latent_sampler`.
    - `encode_outputs`: the names of the dict `encode` returns; `code_name` the one
      `reconstruct`, `interpolate` and latent features use.
    - `loss_terms`: the metrics `fit` and `evaluate` report.
    - `score_term`: the per-example term used as the model's score (export `score`).
    - `input_name`: "features" when one example is a vector (a table's record), else
      "images"; image-only plots and scores do not apply to features.
    - `has_latent_vector`: its code is one vector per image, which can be interpolated,
      scattered and traversed (not a VQ-VAE's grid of discrete codes).
    - `learns_prior`: a prior over its codes is trained as a second stage
      (`vae-tf train-prior`), attached to it and measured by `evaluate_prior(dataset)`.
    - `sample_classes`: the number of classes `sample` takes labels of, or None.
    - `sample_options`: extra keyword arguments its `sample` takes (e.g. "temperature").
    - `export_signatures(latent_sampler)`: the SavedModel signatures it serves.
    """

    is_variational = False
    is_conditional = False
    encode_outputs = ("z",)
    code_name = "z"
    loss_terms = ("loss", "reconstruction")
    score_term = "reconstruction"
    has_latent_vector = True
    learns_prior = False
    sample_options = ()

    def __init__(self, encoder, decoder, likelihood="bernoulli", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihoods.get(likelihood)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.term_metrics = [keras.metrics.Mean(name=name) for name in self.loss_terms]
        self.compiles_training_loop = False
        self._jit_compile_asked = "auto"
        self._batches_checked_outside = False
        self._endless_validation = False  # within `fit`: validation is `distribute.endless`
        self.gathered_examples = None  # within `fit` of IndexedBatches: what the loop gathers from
        self._examples_checked = []  # weak references to the last examples checked, once for every epoch
        # Encoder and decoder arrive built, so every weight exists already.
        self.built = True

    @property
    def can_sample(self):
        return self.is_variational

    @property
    def sample_classes(self):
        return self.num_classes if self.is_conditional else None

    @property
    def metrics(self):
        return list(self.term_metrics)

    @property
    def latent_dim(self):
        return self.decoder.inputs[0].shape[-1]

    @property
    def image_shape(self):
        return tuple(self.encoder.inputs[0].shape[1:])

    @property
    def input_name(self):
        """What one example is: "features" for vector inputs (F,) (records of a table),
        else "images". Names the inputs in messages and export signatures."""
        return "features" if len(self.image_shape) == 1 else "images"

    # --- inputs -----------------------------------------------------------------

    def _split_data(self, data):
        """Returns (images, labels) from what fit/evaluate pass; labels are dropped."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, None

    def _split_inputs(self, inputs):
        """Returns (images, labels) from what `call` receives."""
        return inputs, None

    def _split_predict_data(self, data):
        """Returns (images, labels) from what `predict` passes to `predict_step`."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._split_inputs(x)

    def network_inputs(self, tensor, labels):
        """Returns what the encoder or decoder takes: `tensor`, or `[tensor, labels]` (CVAE)."""
        if labels is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: labels are for CVAE")
        return tensor

    def _check_images(self, x):
        x = as_float(x)
        shape = tf.TensorShape(x.shape)
        if shape.rank is not None:
            checks.check_shape(self, shape[1:])
        return x

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
        """Keras's `fit`, after the input checks.

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
        stacks = batches.indices.padded_batch(self.steps_per_execution, padding_values=padding)
        return read_ahead(stacks.repeat()), dict(kwargs, steps_per_epoch=steps)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_at_door(x if y is None else (x, y), self._split_data)
        if kwargs.get("_use_cached_eval_dataset") and self._endless_validation:  # `fit`'s validation
            compat.continue_validation_iterator(self)
        with checks.first_line_from_graph():
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        # A dataset's elements are what `predict_step` unpacks; arrays are the inputs themselves.
        self._check_at_door(x if isinstance(x, tf.data.Dataset) else (x,), self._split_predict_data)
        with checks.first_line_from_graph():
            return super().predict(x, *args, **kwargs)

    def _check_latents(self, z):
        z = as_float(z)
        if z.shape.rank != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"z has shape {tuple(z.shape)}, but the model expects (batch, {self.latent_dim})"
            )
        return z

    def _decoder_nll(self, x, z, labels, training=False):
        """Per-example -log p(x|z) in nats."""
        params = self.decoder(self.network_inputs(z, labels), training=training)
        return self.likelihood.negative_log_likelihood(x, params)

    # --- the loss ---------------------------------------------------------------

    def encode(self, x, labels=None, training=False):
        """Returns the encoder's outputs as a dict named by `encode_outputs`."""
        raise NotImplementedError

    def per_example_terms(self, x, labels=None, seed=None, training=False):
        """Returns the model's loss terms per example, each a (batch,) tensor in nats.

        Args:
            x: tensor. A batch of images.
            labels: tensor or None. Class ids (conditional models only).
            seed: None to use the model's own noise (the encoder's Sampling layer), or
                a seed as `vae_tf.core.layers.draw_normal` takes it (int, SeedGenerator or
                a stateless pair) for a separate, reproducible draw of z.
            training: bool. Passed to the networks. Defaults to False.

        Returns:
            A dict with at least "reconstruction" and `score_term`.
        """
        raise NotImplementedError

    def compute_terms(self, x, labels=None, training=False):
        """Returns the batch terms named by `loss_terms`, each a scalar in nats per example."""
        terms = {k: ops.mean(v) for k, v in self.per_example_terms(x, labels, training=training).items()}
        return {"loss": terms["reconstruction"], **terms}

    def train_step(self, data):
        x, labels = self._checked_batch(data)
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, labels, training=True)
            loss = terms["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._record(terms)

    def test_step(self, data):
        x, labels = self._checked_batch(data)
        return self._record(self.compute_terms(x, labels, training=False))

    def _record(self, terms):
        for metric in self.term_metrics:
            metric.update_state(terms[metric.name])
        return {metric.name: metric.result() for metric in self.term_metrics}

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

    # --- user-facing methods ----------------------------------------------------

    def _latent_code(self, x, labels, training=False):
        """Returns the code decoded by `call`: the deterministic code, or a draw when training."""
        return self.encode(x, labels, training=training)[self.code_name]

    def call(self, inputs, training=False):
        x, labels = self._split_inputs(inputs)
        z = self._latent_code(self._check_images(x), labels, training=training)
        return self.likelihood.mean(self.decoder(self.network_inputs(z, labels), training=training))

    def decode(self, z, labels=None):
        """Maps latent codes to data space (probabilities for Bernoulli, means for Gaussian)."""
        params = self.decoder(self.network_inputs(self._check_latents(z), labels), training=False)
        return self.likelihood.mean(params)

    def reconstruct(self, x, labels=None):
        """Deterministic reconstruction in data space (a VAE decodes the posterior mean)."""
        return self.decode(self._latent_code(self._check_images(x), labels), labels)

    def interpolate(self, x1, x2, steps=10, labels=None):
        """Decodes `steps` evenly spaced points on the line between the codes of two images.

        Args:
            x1: array. One image, shaped like one example.
            x2: array. Another image of the same shape.
            steps: int. Number of points including both ends, >= 2. Defaults to 10.
            labels: int or None. Conditional models only: the class used to encode and decode.

        Returns:
            A tensor of shape (steps, *image_shape) in data space.
        """
        if not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps}")
        pair = self._check_images(ops.stack([as_float(x1), as_float(x2)]))
        pair_labels = None if labels is None else ops.full((2,), labels, dtype="int32")
        z1, z2 = ops.unstack(self._latent_code(pair, pair_labels), axis=0)
        t = ops.linspace(0.0, 1.0, steps)[:, None]
        step_labels = None if labels is None else ops.full((steps,), labels, dtype="int32")
        return self.decode((1.0 - t) * z1 + t * z2, step_labels)

    def sample(self, num_samples, labels=None, seed=None, latent_sampler=None):
        """Decodes draws from the prior, or from `latent_sampler`, into data space.

        Args:
            num_samples: int. Number of images, >= 1.
            labels: conditional models only; see `CVAE.sample`.
            seed: int or None. Fixes the draws; None uses the model's SeedGenerator.
            latent_sampler: object with `sample(num_samples, seed)` returning latent
                codes, e.g. a fitted `vae_tf.analysis.samplers.GaussianMixtureSampler` (which
                makes an AE generative); None uses `self.prior`. Defaults to None.

        Returns:
            A tensor of shape (num_samples, *image_shape).
        """
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples}")
        if latent_sampler is None:
            if not self.can_sample:
                raise ValueError(
                    f"{type(self).__name__} has no prior to sample from: pass latent_sampler, "
                    "e.g. a GaussianMixtureSampler fitted to its codes (vae_tf.analysis.samplers)"
                )
            latent_sampler = self.prior
        z = latent_sampler.sample(num_samples, seed=self.seed_generator if seed is None else seed)
        return self.decode(z, labels)

    def export_signatures(self, latent_sampler=None):
        """Returns {name: (function, input TensorSpecs)}, the SavedModel signatures
        `vae_tf.serving.export.export_saved_model` writes (see vae_tf.serving.export for the standard set)."""
        from vae_tf.serving.export import standard_signatures  # export builds on the models

        return standard_signatures(self, latent_sampler)

    # --- serialization ----------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "likelihood": keras.saving.serialize_keras_object(self.likelihood),
            "seed": self.seed,
        }

    nested_objects = ("encoder", "decoder", "likelihood")

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserialization consumes nested dicts
        for key in cls.nested_objects:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
