"""The shared `keras.Model` of every family: self-description, steps, decoding, serialization.

Every model reports its loss terms in nats per example (summed over pixels and
latent dimensions, averaged over examples). One function per family,
`per_example_terms`, gives the per-example terms that evaluation, anomaly scores and
the export `score` signature read; `compute_terms` turns them into the batch terms
`train_step` and `test_step` record. The loss used for gradients is divided by the
number of replicas, because tf.distribute sums gradients across replicas.
"""

import copy

import keras
import tensorflow as tf
from keras import ops

from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.core import likelihoods
from vae_tf.models import signatures
from vae_tf.models.fitting import KerasLoops
from vae_tf.models.loops import checks


def as_float(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


class Autoencoder(KerasLoops):
    """Base of every family. Subclasses set the class attributes below and implement
    `encode` and `per_example_terms` (and override `compute_terms` when their training
    loss is more than the mean of those terms).

    What a model says about itself (read these instead of asking for its class):

    - `is_variational`: it has a posterior q(z|x) and a prior (`self.prior`), so
      ELBO, importance-weighted likelihoods and sampling apply.
    - `is_conditional`: it needs integer class labels (`num_classes` of them).
    - `can_sample`: `sample` works without a `latent_sampler`: the model has a prior
      (`self.prior`). A WAE has one without a posterior: it samples, but is not
      variational and has no ELBO or importance-weighted likelihood.
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
    - `mean_code(x, labels)`: one code vector per example, its latent mean (features,
      projector, disentanglement, plots); `code_log_var(x, labels)` its spread, or None.
    - `anomaly_scores`, `exportable_scores`, `default_anomaly_score`, `likelihood_score`
      and `reconstruction_nll(x, labels)`: which anomaly scores
      (`vae_tf.analysis.anomaly`) apply and what they are built from.
    - `held_out_metrics`: the test-set evaluations that apply (`vae_tf.analysis.evaluation.held_out_metrics`).
    - `training_callbacks(beta, kl_warmup_epochs)`: the Keras callbacks its training needs.
    - `optimizer_variables`: the state of every optimizer that trains it (FactorVAE has two).
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
    # Anomaly scores of its kind, in `vae_tf.analysis.anomaly.METHODS` order. A
    # deterministic model has no q(z|x): no ELBO, no importance weights, no regret.
    supported_scores = ("reconstruction", "complexity")
    # Scores made of TensorFlow ops on one batch, which a SavedModel can compute: an
    # AE's complexity is its reconstruction less a PNG length (tf.io.encode_png).
    graph_scores = ("reconstruction", "complexity")
    # The score estimating -log p(x), which `complexity` corrects by the PNG length.
    likelihood_score = "reconstruction"

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihoods.get(likelihood)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.term_metrics = [keras.metrics.Mean(name=name) for name in self.loss_terms]
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

    # --- what analysis and training ask -------------------------------------------

    @property
    def anomaly_scores(self):
        """The anomaly scores that apply: `supported_scores`, without `complexity` (a PNG
        code length) for a table's records."""
        return tuple(s for s in self.supported_scores if s != "complexity" or self.input_name == "images")

    @property
    def exportable_scores(self):
        """The anomaly scores an exported SavedModel can compute (`graph_scores` that apply)."""
        return tuple(s for s in self.anomaly_scores if s in self.graph_scores)

    @property
    def default_anomaly_score(self):
        """The score `calibrate` uses by default: `complexity` (an AE's best) for images,
        `reconstruction` for a table's records. Each runs in a SavedModel."""
        return "complexity" if self.input_name == "images" else "reconstruction"

    def reconstruction_nll(self, x, labels=None):
        """-log p(x | decoder(code)) per example at the deterministic code, in nats."""
        return self.per_example_terms(x, labels)["reconstruction"]

    def mean_code(self, x, labels=None):
        """The latent mean of each example, a float32 (batch, D) tensor: its `code_name`
        output of `encode` (z of an AE, z_mean of a VAE)."""
        return as_float(self.encode(x, labels)[self.code_name])

    def code_log_var(self, x, labels=None):
        """The log-variance of q(z|x) per latent dimension, or None: a deterministic
        encoder has no spread."""
        return None

    @property
    def held_out_metrics(self):
        """The test-set evaluations of its kind (`vae_tf.analysis.evaluation.held_out_metrics`)."""
        return ("reconstruction",)

    def training_callbacks(self, beta, kl_warmup_epochs):
        """The Keras callbacks training this kind of model needs (none here)."""
        return []

    @property
    def optimizer_variables(self):
        """The state of every optimizer training the model, which a checkpoint keeps with
        its variables: `self.optimizer`'s (none before `compile`)."""
        return list(self.optimizer.variables) if self.optimizer is not None else []

    # --- initialization ---------------------------------------------------------

    def initialize_from_data(self, dataset):
        """Starts the decoder's output biases at the logits of the training images' mean,
        as the code of Burda, Grosse & Salakhutdinov (2016, *Importance Weighted
        Autoencoders*) does: the first reconstructions are the data's marginal, not noise.

        Only a decoder whose last layer has one bias per pixel (`dense_out`, the MLP's)
        and a Bernoulli likelihood; anything else is left as it is.

        Args:
            dataset: tf.data.Dataset. The training batches, as `fit` takes them.

        Returns:
            bool. Whether the biases were set.
        """
        if not isinstance(self.likelihood, likelihoods.Bernoulli):
            return False
        try:
            layer = self.decoder.get_layer("dense_out")
        except ValueError:  # a conv decoder: one bias per channel, not per pixel
            return False
        total, count = 0.0, 0
        for batch in dataset:
            images, _ = self._split_data(batch)
            images = tf.reshape(tf.cast(images, tf.float64), (tf.shape(images)[0], -1))
            total += tf.reduce_sum(images, axis=0).numpy()
            count += int(images.shape[0])
        layer.bias.assign(likelihoods.Bernoulli.params_for(total / count))
        return True

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
        seed = self.seed_generator if seed is None else seed
        return self.decode_draw(latent_sampler.sample(num_samples, seed=seed), labels, seed)

    def decode_draw(self, z, labels=None, seed=None):
        """Decodes codes drawn from the prior (or a latent sampler) into samples: `decode`.
        A model with random variables below its code (HVAE's z1) draws them here, from the
        stateless or stateful `seed` the code was drawn with, so samples follow the model."""
        return self.decode(z, labels)

    def export_signatures(self, latent_sampler=None):
        """Returns {name: (function, input TensorSpecs)}, the SavedModel signatures this
        model serves (`vae_tf.models.signatures`); `vae_tf.serving.export` writes them."""
        return signatures.vector_code_signatures(self, latent_sampler)

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
