"""AE, VAE and CVAE: `keras.Model` subclasses with their own `train_step`/`test_step`.

Every model reports its loss terms in nats per example (summed over pixels and
latent dimensions, averaged over examples). The loss used for gradients is divided
by the number of replicas, because tf.distribute sums gradients across replicas.
"""

import copy

import keras
import tensorflow as tf
from keras import ops

from vae_tf import likelihoods
from vae_tf.distribute import spans_workers
from vae_tf.layers import Sampling, gaussian_kl
from vae_tf.optimizers import FusedAdam


def _as_float(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def _find_sampling_layers(model):
    for layer in model.layers:
        if isinstance(layer, Sampling):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from _find_sampling_layers(layer)


# Chosen with `vae-tf benchmark` (README, Performance): several steps per call cut
# Keras's per-step Python overhead. XLA stays at Keras's "auto" (GPUs only): on a
# 2-core CPU it was no faster, and it compiles the CVAE's label checks away.
STEPS_PER_EXECUTION = 32


class _Autoencoder(keras.Model):
    """Shared machinery: steps, metrics, decoding, interpolation and serialization."""

    loss_terms = ("loss", "reconstruction")

    def __init__(self, encoder, decoder, likelihood="bernoulli", **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihoods.get(likelihood)
        self.term_metrics = [keras.metrics.Mean(name=name) for name in self.loss_terms]
        # Encoder and decoder arrive built, so every weight exists already.
        self.built = True

    @property
    def metrics(self):
        return list(self.term_metrics)

    @property
    def latent_dim(self):
        return self.decoder.inputs[0].shape[-1]

    @property
    def image_shape(self):
        return tuple(self.encoder.inputs[0].shape[1:])

    # --- inputs -----------------------------------------------------------------

    def _split_data(self, data):
        """Returns (images, labels) from what fit/evaluate pass; labels are dropped."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, None

    def _split_inputs(self, inputs):
        """Returns (images, labels) from what `call` receives."""
        return inputs, None

    def network_inputs(self, tensor, labels):
        """Returns what the encoder or decoder takes: `tensor`, or `[tensor, labels]` (CVAE)."""
        if labels is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: labels are for CVAE")
        return tensor

    def _check_images(self, x):
        x = _as_float(x)
        expected = self.image_shape
        got = tuple(x.shape[1:])
        if len(got) != len(expected) or any(
            e is not None and g is not None and e != g for e, g in zip(expected, got)
        ):
            raise ValueError(
                f"images have shape {got} per example, but the model expects {expected}"
            )
        return x

    def _check_latents(self, z):
        z = _as_float(z)
        if z.shape.rank != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"z has shape {tuple(z.shape)}, but the model expects (batch, {self.latent_dim})"
            )
        return z

    # --- the loss ---------------------------------------------------------------

    def compute_terms(self, x, labels=None, training=False):
        """Returns the loss terms, each a scalar in nats per example."""
        raise NotImplementedError

    def train_step(self, data):
        x, labels = self._split_data(data)
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, labels, training=True)
            loss = terms["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._record(terms)

    def test_step(self, data):
        x, labels = self._split_data(data)
        return self._record(self.compute_terms(x, labels, training=False))

    def _record(self, terms):
        for metric in self.term_metrics:
            metric.update_state(terms[metric.name])
        results = {metric.name: metric.result() for metric in self.term_metrics}
        if spans_workers(tf.distribute.get_strategy()):
            # Keras averages step results across workers along axis 0, which a scalar lacks.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def compile(self, optimizer=None, steps_per_execution=None, **kwargs):
        """Configures training: `FusedAdam` (Adam in one kernel per weight) with learning
        rate 1e-3 unless `optimizer` is given.

        `steps_per_execution` defaults to `STEPS_PER_EXECUTION` training steps per call
        into the TensorFlow graph on one device (the same updates as one step per call,
        with less Python overhead; callbacks see batches in groups of that size), and
        to 1 under a distribution strategy, where Keras's multi-step loop fails on
        distributed iterators (Keras 3.15).
        """
        if optimizer is None:
            optimizer = FusedAdam(learning_rate=1e-3)
        if steps_per_execution is None:
            distributed = self.distribute_strategy.num_replicas_in_sync > 1
            steps_per_execution = 1 if distributed else STEPS_PER_EXECUTION
        super().compile(optimizer=optimizer, steps_per_execution=steps_per_execution, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models that override `compile`; restoring it means a
        # reloaded `.keras` model resumes training with its optimizer state.
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3 (TF backend) first reduces a sample batch across replicas here, which
        # fails under MultiWorkerMirroredStrategy for (images, labels) batches. These
        # models are built when constructed and compile no Keras losses or metrics, so
        # the optimizer is all that is left to build before the first step.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    # --- user-facing methods ----------------------------------------------------

    def _latent_code(self, x, labels, training=False):
        """Returns the code decoded by `call`: z (AE), z_mean or a sampled z (VAE)."""
        raise NotImplementedError

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
            labels: int or None. CVAE only: the class used to encode and decode.

        Returns:
            A tensor of shape (steps, *image_shape) in data space.
        """
        if not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps}")
        pair = self._check_images(ops.stack([_as_float(x1), _as_float(x2)]))
        pair_labels = None if labels is None else ops.full((2,), labels, dtype="int32")
        z1, z2 = ops.unstack(self._latent_code(pair, pair_labels), axis=0)
        t = ops.linspace(0.0, 1.0, steps)[:, None]
        step_labels = None if labels is None else ops.full((steps,), labels, dtype="int32")
        return self.decode((1.0 - t) * z1 + t * z2, step_labels)

    # --- serialization ----------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "likelihood": keras.saving.serialize_keras_object(self.likelihood),
        }

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserialization consumes nested dicts
        for key in ("encoder", "decoder", "likelihood"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="vae_tf")
class AE(_Autoencoder):
    """Deterministic autoencoder; its loss is the reconstruction NLL.

    Args:
        encoder: keras.Model. Maps images to `z` (e.g. `build_mlp_encoder(...,
            variational=False)`).
        decoder: keras.Model. Maps `z` to logits (Bernoulli) or means (Gaussian).
        likelihood: str or likelihood layer. "bernoulli", "gaussian" or an instance
            from `vae_tf.likelihoods`. Defaults to "bernoulli".

    Example:

    >>> ae = AE(build_mlp_encoder((784,), 32, variational=False),
    ...         build_mlp_decoder((784,), 32))
    >>> ae.compile(); ae.fit(x_train, epochs=10)
    """

    def compute_terms(self, x, labels=None, training=False):
        x = self._check_images(x)
        z = self.encoder(self.network_inputs(x, labels), training=training)
        params = self.decoder(self.network_inputs(z, labels), training=training)
        reconstruction = ops.mean(self.likelihood.negative_log_likelihood(x, params))
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def _latent_code(self, x, labels, training=False):
        return self.encoder(self.network_inputs(x, labels), training=training)

    def encode(self, x, labels=None):
        """Returns the latent codes z of images."""
        return self._latent_code(self._check_images(x), labels)


@keras.saving.register_keras_serializable(package="vae_tf")
class VAE(_Autoencoder):
    """Variational autoencoder trained on the negative ELBO, optionally KL-weighted.

    `loss` is reconstruction + beta * KL (with free bits if the Sampling layer has
    them): the negative ELBO when beta is 1. `kl` reports the plain analytic KL.

    Args:
        encoder: keras.Model. Maps images to `[z_mean, z_log_var, z]` and contains
            exactly one `vae_tf.Sampling` layer (which adds the KL loss).
        decoder: keras.Model. Maps `z` to logits (Bernoulli) or means (Gaussian).
        likelihood: str or likelihood layer. Defaults to "bernoulli".
        beta: float. KL weight, >= 0; stored in `self.beta`, a variable a callback may
            `assign`. Defaults to 1.0.
        seed: int or None. Seed for `sample` when it is given no seed. Defaults to None.

    Example:

    >>> vae = VAE(build_mlp_encoder((28, 28, 1), 20), build_mlp_decoder((28, 28, 1), 20))
    >>> vae.compile(); vae.fit(x_train, epochs=10, batch_size=128)
    >>> images = vae.sample(16)
    """

    loss_terms = ("loss", "reconstruction", "kl")

    def __init__(self, encoder, decoder, likelihood="bernoulli", beta=1.0, seed=None, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, **kwargs)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        sampling_layers = list(_find_sampling_layers(encoder))
        if len(sampling_layers) != 1:
            raise ValueError(
                f"encoder {encoder.name!r} must contain exactly one vae_tf.Sampling layer "
                f"(it adds the KL term), found {len(sampling_layers)}"
            )
        self.sampling = sampling_layers[0]
        self.sampling.beta.assign(beta)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def beta(self):
        """The KL weight variable; `model.beta.assign(0.5)` changes it mid-training."""
        return self.sampling.beta

    def compute_terms(self, x, labels=None, training=False):
        x = self._check_images(x)
        z_mean, z_log_var, z = self.encoder(self.network_inputs(x, labels), training=training)
        params = self.decoder(self.network_inputs(z, labels), training=training)
        reconstruction = ops.mean(self.likelihood.negative_log_likelihood(x, params))
        kl = ops.mean(ops.sum(gaussian_kl(z_mean, z_log_var), axis=-1))
        # The Sampling layer's added loss: beta * KL, with free bits if set.
        regularizer = ops.sum(ops.stack(self.encoder.losses))
        return {"loss": reconstruction + regularizer, "reconstruction": reconstruction, "kl": kl}

    def _latent_code(self, x, labels, training=False):
        z_mean, _, z = self.encoder(self.network_inputs(x, labels), training=training)
        return z if training else z_mean

    def encode(self, x, labels=None):
        """Returns (z_mean, z_log_var) of q(z|x)."""
        z_mean, z_log_var, _ = self.encoder(
            self.network_inputs(self._check_images(x), labels), training=False
        )
        return z_mean, z_log_var

    def sample(self, num_samples, labels=None, seed=None):
        """Decodes draws from the prior N(0, I) into data space.

        Args:
            num_samples: int. Number of images, >= 1.
            labels: CVAE only; see `CVAE.sample`.
            seed: int or None. Fixes the draws; None uses the model's SeedGenerator.

        Returns:
            A tensor of shape (num_samples, *image_shape).
        """
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples}")
        z = keras.random.normal(
            (num_samples, self.latent_dim), seed=self.seed_generator if seed is None else seed
        )
        return self.decode(z, labels)

    def get_config(self):
        return {
            **super().get_config(),
            "beta": float(ops.convert_to_numpy(self.beta)),
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="vae_tf")
class CVAE(VAE):
    """Conditional VAE: the class label conditions both the encoder and the decoder.

    `fit` and `evaluate` take `(images, labels)`; `call` takes `[images, labels]`;
    every other method takes `labels` as an argument.

    Args:
        encoder: keras.Model. Maps `[images, label]` to `[z_mean, z_log_var, z]`.
        decoder: keras.Model. Maps `[z, label]` to logits or means.
        num_classes: int. Number of classes, >= 2.
        likelihood: str or likelihood layer. Defaults to "bernoulli".
        beta: float. KL weight. Defaults to 1.0.
        seed: int or None. Seed for `sample`. Defaults to None.

    Example:

    >>> cvae = make_model("cvae", "mlp", (28, 28, 1), 20, num_classes=10)
    >>> cvae.compile(); cvae.fit(x_train, y_train, epochs=10)
    >>> sevens = cvae.sample(16, labels=7)
    """

    def __init__(self, encoder, decoder, num_classes, likelihood="bernoulli", beta=1.0,
                 seed=None, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed, **kwargs)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")
        self.num_classes = num_classes

    def _split_data(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "CVAE needs labels: pass (images, labels), e.g. fit(x, y) or a dataset "
                "of (image, label) pairs"
            )
        return x, y

    def _split_inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("CVAE is called on [images, labels]")
        return inputs

    def network_inputs(self, tensor, labels):
        if labels is None:
            raise ValueError("CVAE needs labels: integer class ids, one per example")
        labels = ops.convert_to_tensor(labels)
        if labels.shape.rank == 2 and labels.shape[-1] == 1:
            labels = ops.squeeze(labels, axis=-1)
        if labels.shape.rank != 1:
            raise ValueError(
                f"labels must be a vector of class ids, one per example, got shape "
                f"{tuple(labels.shape)}"
            )
        if "int" not in labels.dtype.name:
            raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype.name}")
        return [tensor, labels]

    def sample(self, num_samples, labels=None, seed=None):
        """Generates images of chosen classes.

        Args:
            num_samples: int. Number of images, >= 1.
            labels: int, array of num_samples ints, or None to cycle through the classes.
            seed: int or None. Fixes the draws.

        Returns:
            A tensor of shape (num_samples, *image_shape).
        """
        if labels is None:
            labels = ops.arange(num_samples, dtype="int32") % self.num_classes
        elif ops.ndim(labels) == 0:
            labels = ops.full((num_samples,), labels, dtype="int32")
        elif ops.shape(labels)[0] != num_samples:
            raise ValueError(
                f"labels has {ops.shape(labels)[0]} entries but num_samples is {num_samples}"
            )
        return super().sample(num_samples, labels=labels, seed=seed)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
