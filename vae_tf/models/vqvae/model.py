"""VQ-VAE: a convolutional autoencoder with a discrete, vector-quantized code grid.

van den Oord, Vinyals and Kavukcuoglu (2017), "Neural Discrete Representation
Learning" (arXiv:1711.00937). The encoder maps an image to a grid of vectors z_e, the
`VectorQuantizer` replaces each by its nearest codebook entry, and the decoder maps the
quantized grid back to the image. Training minimizes (eq. 3) the reconstruction NLL
(nats per example, from `vae_tf.core.likelihoods`) plus the codebook and commitment terms.
New images come from a second stage: an autoregressive prior over code grids
(`vae_tf.models.vqvae.pixelcnn.PixelCNNPrior`) fitted by `vae_tf.models.vqvae.prior`,
attached with `attach_prior`, sampled and decoded by `sample`. Its networks are in
`vae_tf.models.vqvae.networks`, its signatures in `vae_tf.models.vqvae.signatures`.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.core import likelihoods
from vae_tf.core.networks import FILTERS
from vae_tf.models import registry
from vae_tf.models.base import Autoencoder
from vae_tf.models.vqvae.networks import build_vq_decoder, build_vq_encoder, registry_networks
from vae_tf.models.vqvae.prior import prior_data
from vae_tf.models.vqvae.quantizer import COMMITMENT, EMA, VectorQuantizer, codebook_statistics
from vae_tf.models.vqvae.signatures import grid_code_signatures

NUM_EMBEDDINGS = 128  # codebook size K
EMBEDDING_DIM = 16  # size of each code vector


@keras.saving.register_keras_serializable(package="vae_tf")
class VQVAE(Autoencoder):
    """Vector-quantized autoencoder; its loss is reconstruction NLL + VQ loss, per example.

    Metrics: `loss`, `reconstruction` (nats per example), `vq` (codebook + beta *
    commitment, summed over the grid), `perplexity` and `codebook_usage` of the batch's
    codes (averaged over batches). Not variational; it can sample once a prior over
    its codes is attached (`attach_prior`, `vae-tf train-prior`).

    Args:
        encoder: keras.Model. Images -> z_e, shape (H', W', D).
        decoder: keras.Model. Quantized grid (H', W', D) -> logits (Bernoulli) or means.
        quantizer: VectorQuantizer. With embedding_dim D.
        likelihood: str or likelihood layer. "bernoulli" or "gaussian" or an instance
            from `vae_tf.core.likelihoods`. Defaults to "bernoulli".
        prior: PixelCNNPrior or None. A prior over this model's code grids, needed by
            `sample`. Defaults to None (attach one later with `attach_prior`).
        seed: int or None. Seeds the sample seeds drawn when `sample` gets none.

    Example:

    >>> model = make_vqvae((28, 28, 1), num_embeddings=128, embedding_dim=16)
    >>> model.compile(); model.fit(x_train, epochs=5, batch_size=128)
    >>> model.encode(x_test[:8])["codes"].shape  # (8, 7, 7)
    """

    encode_outputs = ("codes", "z_e")
    code_name = "codes"
    loss_terms = ("loss", "reconstruction", "vq")
    score_term = "reconstruction"
    has_latent_vector = False
    learns_prior = True
    sample_options = ("temperature", "progress")

    def __init__(
        self, encoder, decoder, quantizer, likelihood=LIKELIHOOD, prior=None, seed=None, **kwargs
    ):
        z_e_shape = tuple(encoder.outputs[0].shape[1:])
        if len(z_e_shape) != 3 or z_e_shape[-1] != quantizer.embedding_dim:
            raise ValueError(
                f"encoder output has shape {z_e_shape} per example, but the quantizer expects "
                f"(H', W', {quantizer.embedding_dim})"
            )
        if tuple(decoder.inputs[0].shape[1:]) != z_e_shape:
            raise ValueError(
                f"decoder input has shape {tuple(decoder.inputs[0].shape[1:])}, but the "
                f"encoder outputs {z_e_shape}"
            )
        super().__init__(encoder, decoder, likelihood=likelihood, seed=seed, **kwargs)
        self.quantizer = quantizer
        self.prior = None
        self.codebook_metrics = [
            keras.metrics.Mean(name="perplexity"), keras.metrics.Mean(name="codebook_usage")
        ]
        if prior is not None:
            self.attach_prior(prior)

    # --- what the model is --------------------------------------------------------

    @property
    def can_sample(self):
        return self.prior is not None

    @property
    def sample_classes(self):
        return None if self.prior is None else self.prior.num_classes

    @property
    def metrics(self):
        return [*self.term_metrics, *self.codebook_metrics]

    @property
    def held_out_metrics(self):
        """Reconstruction, and the attached prior's likelihood of the codes (`evaluate_prior`)."""
        return ("reconstruction", "prior") if self.prior is not None else ("reconstruction",)

    def mean_code(self, x, labels=None):
        """The pre-quantization vectors z_e averaged over the code grid: float32 (batch, D)."""
        return ops.mean(self.encode(x, labels)["z_e"], axis=(1, 2))

    @property
    def grid_shape(self):
        """(H', W'), the shape of one code grid."""
        return tuple(self.encoder.outputs[0].shape[1:3])

    @property
    def num_embeddings(self):
        return self.quantizer.num_embeddings

    def attach_prior(self, prior):
        """Attaches a `PixelCNNPrior` over this model's code grids, used by `sample`."""
        grid_shape = tuple(prior.grid_shape)
        if prior.num_embeddings != self.num_embeddings or grid_shape != self.grid_shape:
            raise ValueError(
                f"prior models {prior.num_embeddings} codes on a {grid_shape} grid, "
                f"but this VQ-VAE has {self.num_embeddings} codes on a {self.grid_shape} grid"
            )
        self.prior = prior

    def evaluate_prior(self, dataset, prior=None):
        """Test metrics of a prior over this model's codes.

        Args:
            dataset: tf.data.Dataset. Batches of (images, labels).
            prior: PixelCNNPrior or None. Defaults to None, the attached prior.

        Returns:
            {"prior_nll": nats per image, "prior_bits_per_dim": bits per code position}.
        """
        prior = self.prior if prior is None else prior
        results = prior.evaluate(prior_data(self, prior, dataset), verbose=0, return_dict=True)
        return {"prior_nll": float(results["nll"]),
                "prior_bits_per_dim": float(results["bits_per_dim"])}

    # --- inputs -------------------------------------------------------------------

    def check_codes(self, codes):
        """Returns `codes` as int32 after checking their shape and range.

        Shape and dtype are checked in Python; the range [0, num_embeddings) in Python
        for concrete values and by `tf.debugging` assertions inside graphs.
        """
        codes = ops.convert_to_tensor(codes)
        if "int" not in codes.dtype.name:
            raise ValueError(f"codes must be integers, got dtype {codes.dtype.name}")
        if codes.shape.rank != 3 or tuple(codes.shape[1:]) != self.grid_shape:
            raise ValueError(
                f"codes have shape {tuple(codes.shape)}, but the model expects "
                f"(batch, {self.grid_shape[0]}, {self.grid_shape[1]})"
            )
        codes = ops.cast(codes, "int32")
        message = f"codes must lie in [0, {self.num_embeddings})"
        if tf.executing_eagerly():
            values = ops.convert_to_numpy(codes)
            if values.size and (values.min() < 0 or values.max() >= self.num_embeddings):
                raise ValueError(f"{message}, got values from {values.min()} to {values.max()}")
            return codes
        checks = [
            # A SavedModel signature called with another grid runs with the wrong shape
            # unless it is asserted at run time.
            tf.debugging.assert_equal(
                tf.shape(codes)[1:], tf.constant(self.grid_shape, tf.int32),
                message=f"codes must have shape (batch, {self.grid_shape[0]}, {self.grid_shape[1]})"),
            tf.debugging.assert_non_negative(codes, message=message),
            tf.debugging.assert_less(codes, self.num_embeddings, message=message),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(codes)

    # --- the loss -------------------------------------------------------------------

    def _forward(self, x, training=False):
        x = self._check_images(x)
        quantized = self.quantizer(self.encoder(x, training=training), training=training)
        params = self.decoder(quantized["quantized"], training=training)
        reconstruction = self.likelihood.negative_log_likelihood(x, params)
        terms = {
            "loss": reconstruction + quantized["vq_loss"],
            "reconstruction": reconstruction,
            "vq": quantized["vq_loss"],
        }
        return terms, quantized["codes"]

    def per_example_terms(self, x, labels=None, seed=None, training=False):
        """Returns the loss terms of each example in nats: dict of (batch,) tensors.

        Deterministic, so `seed` is unused; `labels` must be None. `training=True`
        also updates the codebook (EMA, dead-code restarts).
        """
        x = self.network_inputs(x, labels)
        return self._forward(x, training=training)[0]

    def _network_weights(self):
        # Not self.trainable_weights: an attached prior is trained separately.
        return [
            *self.encoder.trainable_weights, *self.decoder.trainable_weights,
            *self.quantizer.trainable_weights, *self.likelihood.trainable_weights,
        ]

    def train_step(self, data):
        x, _ = self._checked_batch(data)
        weights = self._network_weights()
        with tf.GradientTape() as tape:
            terms, codes = self._forward(x, training=True)
            loss = ops.mean(terms["loss"]) / tf.distribute.get_strategy().num_replicas_in_sync
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, weights)
        self.optimizer.apply_gradients(zip(gradients, weights))
        return self._record(terms, codes)

    def test_step(self, data):
        x, _ = self._checked_batch(data)
        return self._record(*self._forward(x, training=False))

    def _record(self, terms, codes):
        for metric in self.term_metrics:
            metric.update_state(ops.mean(terms[metric.name]))
        statistics = codebook_statistics(codes, self.num_embeddings)
        for metric in self.codebook_metrics:
            metric.update_state(statistics[metric.name])
        return {metric.name: metric.result() for metric in self.metrics}

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self._network_weights())

    # --- user-facing methods ----------------------------------------------------------

    def encode(self, x, labels=None, training=False):
        """Returns {"codes": int32 (batch, H', W'), "z_e": float32 (batch, H', W', D)}."""
        z_e = self.encoder(self.network_inputs(self._check_images(x), labels), training=training)
        return {"codes": self.quantizer.nearest_codes(z_e), "z_e": z_e}

    def decode(self, codes, labels=None):
        """Maps code grids to data space (probabilities for Bernoulli, means for Gaussian)."""
        codes = self.network_inputs(codes, labels)
        quantized = self.quantizer.lookup(self.check_codes(codes))
        return self.likelihood.mean(self.decoder(quantized, training=False))

    def reconstruct(self, x, labels=None):
        """Encodes, quantizes and decodes: deterministic reconstructions in data space."""
        return self.decode(self.encode(x, labels)["codes"])

    def call(self, inputs, training=False):
        return self.reconstruct(inputs)

    def interpolate(self, x1, x2, steps=10, labels=None):
        raise ValueError("a VQ-VAE's codes are discrete: there is no line between them to decode")

    def sample(self, num_samples, labels=None, seed=None, latent_sampler=None, temperature=1.0,
               progress=None):
        """Draws code grids from the attached prior and decodes them.

        Args:
            num_samples: int. Number of images, >= 1.
            labels: int, array of ints or None. Classes for a conditional prior; None
                cycles through them.
            seed: int or None. Fixes the draws; None draws a seed from the model's
                SeedGenerator. Defaults to None.
            latent_sampler: must be None: the codes come from the attached prior.
            temperature: float > 0. Prior temperature. Defaults to 1.0.
            progress: callable or None. `progress(done, total)` after each of the
                H' x W' sampling steps. Defaults to None.

        Returns:
            A tensor (num_samples, *image_shape) in data space.
        """
        if latent_sampler is not None:
            raise ValueError("a VQ-VAE samples from its attached PixelCNN prior, not a latent_sampler")
        if self.prior is None:
            raise ValueError("sample needs a prior: train a PixelCNNPrior and attach_prior it "
                             "(vae-tf train-prior RUN)")
        if labels is None and self.prior.is_conditional:
            labels = np.arange(num_samples, dtype="int32") % self.prior.num_classes
        if seed is None:
            seed = int(keras.random.randint((), 0, 2**31 - 1, seed=self.seed_generator))
        codes = self.prior.sample_codes(
            num_samples, seed=seed, temperature=temperature, labels=labels, progress=progress
        )
        return self.decode(codes)

    def export_signatures(self, latent_sampler=None):
        """Returns {name: (function, input TensorSpecs)}, the SavedModel signatures this
        model serves (`vae_tf.models.vqvae.signatures`)."""
        return grid_code_signatures(self, latent_sampler)

    # --- serialization ------------------------------------------------------------------

    nested_objects = ("encoder", "decoder", "quantizer", "likelihood", "prior")

    def get_config(self):
        config = super().get_config()
        for key in ("quantizer", "prior"):
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        return config


def make_vqvae(
    input_shape,
    num_embeddings=NUM_EMBEDDINGS,
    embedding_dim=EMBEDDING_DIM,
    filters=FILTERS,
    likelihood=LIKELIHOOD,
    sigma=None,
    learn_sigma=False,
    beta=COMMITMENT,
    ema=EMA,
    decay=0.99,
    restart_after=100,
    seed=None,
):
    """Builds a convolutional VQ-VAE; the decoder uses `filters` reversed.

    Args:
        input_shape: tuple. (H, W, C); the code grid is (ceil(H / 2^n), ceil(W / 2^n))
            for n = len(filters).
        num_embeddings: int. Codebook size. Defaults to `NUM_EMBEDDINGS`.
        embedding_dim: int. Code vector size. Defaults to `EMBEDDING_DIM`.
        filters: tuple of int. Encoder stride-2 convolution filters. Defaults to `FILTERS`.
        likelihood: str. "bernoulli" or "gaussian". Defaults to "bernoulli".
        sigma: float or None. Gaussian sigma. Defaults to None (1.0).
        learn_sigma: bool. Learn the Gaussian sigma. Defaults to False.
        beta: float. Commitment weight (the `commitment` option). Defaults to `COMMITMENT`.
        ema: bool. EMA codebook updates (the `codebook_ema` option). Defaults to `EMA`.
        decay: float. EMA decay. Defaults to 0.99.
        restart_after: int. Steps before an unused code is restarted; 0 for never.
            Defaults to 100.
        seed: int or None. Seeds the codebook, restarts and sample seeds.

    Returns:
        An uncompiled `VQVAE`.

    Example:

    >>> model = make_vqvae((250, 250, 3), num_embeddings=512, filters=(32, 64, 128))
    """
    encoder = build_vq_encoder(input_shape, embedding_dim, filters)
    decoder = build_vq_decoder(input_shape, embedding_dim, tuple(reversed(filters)))
    quantizer = VectorQuantizer(
        num_embeddings, embedding_dim, beta=beta, ema=ema, decay=decay,
        restart_after=restart_after, seed=seed, name="quantizer",
    )
    return VQVAE(
        encoder, decoder, quantizer,
        likelihood=likelihoods.get(likelihood, sigma=sigma, learn_sigma=learn_sigma), seed=seed,
    )


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape,
           num_embeddings, embedding_dim, codebook_ema, commitment):
    quantizer = VectorQuantizer(num_embeddings, embedding_dim, beta=commitment, ema=codebook_ema,
                                seed=seed, name="quantizer")
    return VQVAE(encoder, decoder, quantizer, likelihood=likelihood, seed=seed)


registry.register(registry.Family(
    name="vqvae",
    summary="vector-quantized autoencoder: discrete code grids, sharp reconstructions; "
            "samples after vae-tf train-prior",
    model_class=VQVAE, variational=False, conditional=False, build=_build, networks=registry_networks,
    archs=("conv",),  # a grid of codes
    options=(
        registry.Option("num_embeddings", int, NUM_EMBEDDINGS, "codebook size K", minimum=2),
        registry.Option("embedding_dim", int, EMBEDDING_DIM, "size of each code vector", minimum=1),
        registry.Option("codebook_ema", bool, EMA,
                        "update the codebook by exponential moving averages instead of gradients"),
        registry.Option("commitment", float, COMMITMENT, "commitment loss weight beta", minimum=0.0),
    ),
))
