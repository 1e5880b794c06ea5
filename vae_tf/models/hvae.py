"""The variational autoencoder with two stochastic layers (the IWAE paper's second architecture)."""

import math

import keras
from keras import layers, ops

from vae_tf.core import priors
from vae_tf.core.layers import BETA, reparameterize, split_seed
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.core.networks import ACTIVATION, linear
from vae_tf.models import registry, signatures
from vae_tf.models.base import as_float
from vae_tf.models.iwae import TRAIN_SAMPLES
from vae_tf.models.vae import VAE

TOP_LATENT_DIM = 50  # z2, the paper's
TOP_HIDDEN_UNITS = 50  # the width of the two hidden layers of q(z2|z1) and p(z1|z2), the paper's


def _gaussian_mlp(inputs_dim, outputs_dim, hidden_units, activation, name, input_name):
    """A functional MLP from a vector to [mean, log_var] of a diagonal Gaussian."""
    inputs = keras.Input((inputs_dim,), name=input_name)
    x = inputs
    for i in range(2):
        x = linear(hidden_units, activation=activation, name=f"dense_{i}")(x)
    # float32 heads, as the encoders' latent heads: log-variances lose too much in 16 bits.
    mean = linear(outputs_dim, name="mean", dtype="float32")(x)
    log_var = linear(outputs_dim, name="log_var", dtype="float32")(x)
    return keras.Model(inputs, [mean, log_var], name=name)


def build_top_networks(z1_dim, z2_dim=TOP_LATENT_DIM, hidden_units=TOP_HIDDEN_UNITS, activation=ACTIVATION):
    """Builds the top layer's networks: q(z2|z1) and p(z1|z2), two hidden layers each.

    Args:
        z1_dim: int. Size of the bottom stochastic layer z1.
        z2_dim: int. Size of the top stochastic layer z2. Defaults to `TOP_LATENT_DIM`.
        hidden_units: int. Width of each network's two hidden layers. Defaults to
            `TOP_HIDDEN_UNITS`.
        activation: str or callable. Of the hidden layers. Defaults to `ACTIVATION`.

    Returns:
        (top_encoder, top_decoder): functional models z1 -> [z2_mean, z2_log_var] and
        z2 -> [z1_mean, z1_log_var].

    Example:

    >>> top_encoder, top_decoder = build_top_networks(100, 50, 50, "tanh")
    """
    for name, value in (("z1_dim", z1_dim), ("top_latent_dim", z2_dim), ("top_hidden_units", hidden_units)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return (_gaussian_mlp(z1_dim, z2_dim, hidden_units, activation, "top_encoder", "z1"),
            _gaussian_mlp(z2_dim, z1_dim, hidden_units, activation, "top_decoder", "z2"))


@keras.saving.register_keras_serializable(package="vae_tf")
class HVAE(VAE):
    """A VAE with two stochastic layers, trained on the ELBO or the importance-weighted bound.

    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016,
    section 5 and appendix: the generative model p(z2) p(z1|z2) p(x|z1) with p(z2) =
    N(0, I) and p(z1|z2) a diagonal Gaussian, the recognition model q(z1|x) q(z2|z1).
    `encoder` and `decoder` are the bottom layer's (x -> z1 with its Sampling layer,
    z1 -> x), `top_encoder` and `top_decoder` the top layer's. The paper's MNIST model
    is `make_model("hvae", "mlp", (28, 28, 1), 100, hidden_units=(100, 100),
    activation="tanh", top_latent_dim=50, top_hidden_units=50)`.

    `loss` is -L_K of the paper's eq. 8 with log w = log p(x|z1) + beta * (log p(z1|z2)
    + log p(z2) - log q(z1|x) - log q(z2|z1)): with `train_samples` K = 1 the negative
    single-draw ELBO (the paper's two-layer VAE), with K > 1 its two-layer IWAE. The
    KL term is the Monte-Carlo estimate log q(z1, z2|x) - log p(z1, z2) at the draws:
    the KL between the joint posterior and the hierarchical prior has no closed form,
    and the analytic KL(q(z1|x) || N(0, I)) the encoder's Sampling layer adds as a
    loss is not this model's and is not used (its `beta` variable is: the KL weight).
    `reconstruction` and `kl` report the first draw's terms.

    The code is the top layer's: `latent_dim` is the size of z2, `decode` maps z2
    top-down through the mean of p(z1|z2), and `sample` draws ancestrally: z2 ~ p(z2),
    z1 ~ p(z1|z2), the decoder's mean (`decode_draw`).
    `reconstruct` and `reconstruction_nll` decode the mean of q(z1|x), the
    reconstruction of the ELBO. `encode` returns `z2_mean` and `z2_log_var` (q(z2|z1)
    at z1 = the mean of q(z1|x)) and `z1_mean`, `z1_log_var` (q(z1|x)).

    Args:
        encoder: keras.Model. Images -> [z1_mean, z1_log_var, z1], with one Sampling layer.
        decoder: keras.Model. z1 -> logits (Bernoulli) or means (Gaussian).
        top_encoder: keras.Model. z1 -> [z2_mean, z2_log_var] of q(z2|z1).
        top_decoder: keras.Model. z2 -> [z1_mean, z1_log_var] of p(z1|z2).
        likelihood, beta, seed: as for `VAE`.
        train_samples: int. K, importance samples per example in training, >= 1; 1 is
            the ELBO. Defaults to 5 (`TRAIN_SAMPLES`, the IWAE family's option).

    Example:

    >>> hvae = make_model("hvae", "mlp", (28, 28, 1), 100, hidden_units=(100, 100),
    ...                   activation="tanh", train_samples=1)
    >>> hvae.compile(); hvae.fit(x_train, epochs=10)
    >>> images = hvae.sample(16)
    """

    encode_outputs = ("z2_mean", "z2_log_var", "z1_mean", "z1_log_var")
    code_name = "z2_mean"
    # regret fits one Gaussian q(z|x) per example: not this model's two-layer posterior.
    supported_scores = ("neg_elbo", "iw_nll", "reconstruction", "complexity")
    graph_scores = ("reconstruction",)
    default_anomaly_score = "reconstruction"
    nested_objects = ("encoder", "decoder", "top_encoder", "top_decoder", "likelihood")

    def __init__(self, encoder, decoder, top_encoder, top_decoder, likelihood=LIKELIHOOD, beta=BETA,
                 seed=None, train_samples=TRAIN_SAMPLES.default, **kwargs):
        kwargs.pop("prior", None)  # always N(0, I) over z2: not a setting
        z1_dim, z2_dim = decoder.inputs[0].shape[-1], top_decoder.inputs[0].shape[-1]
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                         prior=priors.StandardNormal(z2_dim), **kwargs)
        if self.sampling.free_bits:
            raise ValueError("free_bits does not apply to HVAE: its KL is a Monte-Carlo estimate")
        if not isinstance(train_samples, int) or train_samples < 1:
            raise ValueError(f"train_samples must be an integer >= 1, got {train_samples}")
        shapes = (top_encoder.inputs[0].shape[-1], top_encoder.outputs[0].shape[-1],
                  top_decoder.outputs[0].shape[-1])
        if shapes != (z1_dim, z2_dim, z1_dim):
            raise ValueError(f"top_encoder must map z1 ({z1_dim}) to z2 ({z2_dim}) and top_decoder z2 "
                             f"to z1; they map {shapes[0]} -> {shapes[1]} and {z2_dim} -> {shapes[2]}")
        self.top_encoder = top_encoder
        self.top_decoder = top_decoder
        self.train_samples = train_samples

    @property
    def latent_dim(self):
        """The size of z2, the code `decode` and `sample` take."""
        return self.prior.latent_dim

    @property
    def z1_dim(self):
        """The size of the bottom stochastic layer z1."""
        return self.decoder.inputs[0].shape[-1]

    # --- codes and decoding ---------------------------------------------------

    def encode(self, x, labels=None, training=False):
        """Returns {"z2_mean", "z2_log_var"} of q(z2|z1) at z1 = the mean of q(z1|x), and
        {"z1_mean", "z1_log_var"} of q(z1|x)."""
        z1_mean, z1_log_var, _ = self._posterior(self._check_images(x), labels, training)
        z2_mean, z2_log_var = self.top_encoder(z1_mean, training=training)
        return {"z2_mean": z2_mean, "z2_log_var": z2_log_var, "z1_mean": z1_mean, "z1_log_var": z1_log_var}

    def _latent_code(self, x, labels, training=False):
        return self.encode(x, labels, training)["z2_mean"]

    def code_log_var(self, x, labels=None):
        """The log-variance of q(z2|z1) at the mean of q(z1|x) (`z2_log_var`)."""
        return self.encode(x, labels)["z2_log_var"]

    def decode(self, z, labels=None):
        """Maps z2 to data space through the mean of p(z1|z2)."""
        z1_mean, _ = self.top_decoder(self._check_latents(z), training=False)
        return self.likelihood.mean(self.decoder(self.network_inputs(z1_mean, labels), training=False))

    def decode_draw(self, z, labels=None, seed=None):
        """Decodes draws of p(z2) ancestrally: z1 ~ p(z1|z2), then the decoder's mean, so
        `sample` follows the model (decoding the mean of p(z1|z2) would drop its noise)."""
        z1_mean, z1_log_var = self.top_decoder(self._check_latents(z), training=False)
        # The second of two seeds split from the code's: noise independent of z2's.
        z1 = reparameterize(z1_mean, z1_log_var, split_seed(seed)[1])
        return self.likelihood.mean(self.decoder(self.network_inputs(z1, labels), training=False))

    def _reconstruction(self, x, labels, training=False):
        z1_mean, _, z1 = self._posterior(self._check_images(x), labels, training)
        params = self.decoder(z1 if training else z1_mean, training=training)
        return self.likelihood.mean(params)

    def call(self, inputs, training=False):
        x, labels = self._split_inputs(inputs)
        return self._reconstruction(x, labels, training)

    def reconstruct(self, x, labels=None):
        """Decodes the mean of q(z1|x): the reconstruction of the ELBO."""
        return self._reconstruction(x, labels)

    def reconstruction_nll(self, x, labels=None):
        """-log p(x | decoder(z1_mean)) per example, in nats: the decoder at q(z1|x)'s mean."""
        return self._decoder_nll(as_float(x), self.encode(x, labels)["z1_mean"], labels)

    def export_signatures(self, latent_sampler=None):
        """The signatures of `vae_tf.models.signatures`, with `reconstruct` (and
        `serving_default`) decoding z1 as `reconstruct` does."""
        served = signatures.vector_code_signatures(self, latent_sampler)
        encode, specs = served["encode"]

        def reconstruct(images):
            codes = encode(images)
            params = self.decoder(codes["z1_mean"], training=False)
            return {"reconstructions": self.likelihood.mean(params), **codes}

        served["serving_default"] = served["reconstruct"] = (reconstruct, specs)
        return served

    # --- the bound --------------------------------------------------------------

    def _log_weight_parts(self, x, z1_mean, z1_log_var, z1, z2_seed, training=False):
        """Returns (log p(x|z1), log p(z1|z2) + log p(z2), log q(z1|x) + log q(z2|z1)), each
        (K, batch), for draws z1 (K, batch, z1_dim) and one z2 ~ q(z2|z1) per draw."""
        num_samples, batch = ops.shape(z1)[0], ops.shape(z1)[1]
        flat_z1 = ops.reshape(z1, (-1, self.z1_dim))
        tiled_x = ops.tile(x, (num_samples,) + (1,) * (len(x.shape) - 1))
        log_px = -self._decoder_nll(tiled_x, flat_z1, None, training=training)
        z2_mean, z2_log_var = self.top_encoder(flat_z1, training=training)
        z2 = reparameterize(z2_mean, z2_log_var, z2_seed, training=training)
        p1_mean, p1_log_var = self.top_decoder(z2, training=training)
        log_p = priors.gaussian_log_prob(flat_z1, p1_mean, p1_log_var) + self.prior.log_prob(z2)
        log_q = (priors.gaussian_log_prob(flat_z1, ops.tile(z1_mean, (num_samples, 1)),
                                          ops.tile(z1_log_var, (num_samples, 1)))
                 + priors.gaussian_log_prob(z2, z2_mean, z2_log_var))
        return tuple(ops.reshape(t, (num_samples, batch)) for t in (log_px, log_p, log_q))

    def per_example_terms(self, x, labels=None, seed=None, training=False):
        """Returns per-example "reconstruction" -log p(x|z1), "kl" log q(z1, z2|x) -
        log p(z1, z2) and "neg_elbo" (their sum), at one draw of z1 and z2."""
        x = self._check_images(x)
        z1_mean, z1_log_var, z1 = self._posterior(x, labels, training)
        if seed is None:  # the Sampling layer's z1 and its generator for z2
            z2_seed = self.sampling.seed_generator
        else:
            z1_seed, z2_seed = split_seed(seed)
            z1, training = reparameterize(z1_mean, z1_log_var, z1_seed), False
        log_px, log_p, log_q = self._log_weight_parts(x, z1_mean, z1_log_var, z1[None], z2_seed, training)
        kl = log_q[0] - log_p[0]
        return {"reconstruction": -log_px[0], "kl": kl, "neg_elbo": kl - log_px[0]}

    def compute_terms(self, x, labels=None, training=False):
        x = self._check_images(x)
        z1_mean, z1_log_var, z1 = self._posterior(x, labels, training)
        draws = ops.expand_dims(z1, 0)
        generator = self.sampling.seed_generator  # saved with the weights: resumes continue its noise
        if self.train_samples > 1:
            more = reparameterize(z1_mean, z1_log_var, generator, self.train_samples - 1, training=training)
            draws = ops.concatenate([draws, more], axis=0)
        log_px, log_p, log_q = self._log_weight_parts(x, z1_mean, z1_log_var, draws, generator, training)
        log_w = log_px + self.beta * (log_p - log_q)
        bound = ops.logsumexp(log_w, axis=0) - math.log(self.train_samples)
        return {"loss": -ops.mean(bound), "reconstruction": -ops.mean(log_px[0]),
                "kl": ops.mean(log_q[0] - log_p[0])}

    def log_importance_weights(self, x, codes, labels=None, num_samples=1, seed=None):
        """log w_k = log p(x|z1_k) + log p(z1_k|z2_k) + log p(z2_k) - log q(z1_k|x) -
        log q(z2_k|z1_k), with z1_k ~ q(z1|x) and z2_k ~ q(z2|z1_k), k = 1..K.

        Args:
            x: tensor. A batch of images.
            codes: dict. `encode(x, labels)` (its z1_mean and z1_log_var are used).
            labels: None (the model is not conditional).
            num_samples: int. K, >= 1. Defaults to 1.
            seed: seed as `vae_tf.core.layers.draw_normal` takes it. Defaults to None.

        Returns:
            A (K, batch) tensor; logsumexp over K minus log K estimates log p(x).
        """
        self.network_inputs(x, labels)  # refuses labels
        z1_seed, z2_seed = split_seed(seed)
        z1_mean, z1_log_var = codes["z1_mean"], codes["z1_log_var"]
        z1 = reparameterize(z1_mean, z1_log_var, z1_seed, num_samples)
        log_px, log_p, log_q = self._log_weight_parts(as_float(x), z1_mean, z1_log_var, z1, z2_seed)
        return log_px + log_p - log_q

    def get_config(self):
        config = {**super().get_config(), "train_samples": self.train_samples,
                  "top_encoder": keras.saving.serialize_keras_object(self.top_encoder),
                  "top_decoder": keras.saving.serialize_keras_object(self.top_decoder)}
        config.pop("prior")
        return config


def _hidden_activation(encoder):
    """The activation of the bottom encoder's hidden layers (`--activation`), which the top
    networks share: the paper's model is tanh throughout."""
    for layer in encoder.layers:
        activation = getattr(layer, "activation", None)
        if activation is not None and activation is not keras.activations.linear:
            return activation
    return ACTIVATION


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, train_samples,
           top_latent_dim, top_hidden_units):
    z1_dim = decoder.inputs[0].shape[-1]
    top_encoder, top_decoder = build_top_networks(z1_dim, top_latent_dim, top_hidden_units,
                                                  _hidden_activation(encoder))
    return HVAE(encoder, decoder, top_encoder, top_decoder, likelihood=likelihood, beta=beta, seed=seed,
                train_samples=train_samples)


registry.register(registry.Family(
    name="hvae",
    summary="two stochastic layers z1, z2 (the IWAE paper's): better likelihoods than one layer",
    model_class=HVAE, variational=True, conditional=False, build=_build,
    options=(
        TRAIN_SAMPLES,
        registry.Option("top_latent_dim", int, TOP_LATENT_DIM, "size of the top stochastic layer z2",
                        minimum=1),
        registry.Option("top_hidden_units", int, TOP_HIDDEN_UNITS,
                        "width of the two hidden layers of q(z2|z1) and p(z1|z2)", minimum=1),
    ),
))
