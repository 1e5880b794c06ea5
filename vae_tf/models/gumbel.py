"""The categorical VAE trained with the Gumbel-softmax relaxation, temperature annealed."""

import keras
from keras import ops

from vae_tf.core import categorical, networks
from vae_tf.core.categorical import GumbelSoftmax, UniformCategorical, log_probabilities, one_hot_draws
from vae_tf.core.layers import BETA, clamp_log_var
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.models import registry
from vae_tf.models.base import Autoencoder, as_float
from vae_tf.models.schedules import BetaSchedule


def _relaxation_layer(encoder):
    found = [layer for layer in encoder.layers if isinstance(layer, GumbelSoftmax)]
    if len(found) != 1:
        raise ValueError(f"encoder {encoder.name!r} must contain exactly one vae_tf.GumbelSoftmax layer "
                         f"(it draws the code and adds the KL term), found {len(found)}")
    return found[0]


def build_categorical_encoder(logits_encoder, categories=categorical.CATEGORIES, **relaxation):
    """Turns an encoder of flat logits (batch, N * K) into a categorical one.

    Args:
        logits_encoder: keras.Model. Images -> logits, e.g. a `variational=False` encoder
            of `vae_tf.core.networks` with latent_dim N * K.
        categories: int. K. Defaults to 10.
        **relaxation: the other arguments of `vae_tf.core.categorical.GumbelSoftmax`.

    Returns:
        A functional `keras.Model` images -> [logits, code], code drawn by a `GumbelSoftmax`.

    Example:

    >>> encoder = build_categorical_encoder(build_mlp_encoder((28, 28, 1), 200, variational=False))
    """
    logits = logits_encoder.outputs[0]
    code = GumbelSoftmax(categories, name="gumbel_softmax", dtype="float32", **relaxation)(logits)
    return keras.Model(logits_encoder.inputs, [logits, code], name=logits_encoder.name)


@keras.saving.register_keras_serializable(package="vae_tf")
class GumbelVAE(Autoencoder):
    """A VAE whose latent code is N categorical variables of K categories each, trained
    with the Gumbel-softmax (concrete) relaxation.

    Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017
    (sec. 2, 4.2); Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017. `loss`
    is the reconstruction at the relaxed sample plus beta times the exact KL of q(z|x)
    to the uniform categorical prior (the paper's training objective with a fixed
    uniform prior where they learn one: a relaxation, not a bound). The temperature
    follows tau = max(tau_min, tau_0 exp(-r t)), t the optimizer's step count rounded
    down to a multiple of N, set at the start of each training step: a resumed run
    anneals exactly as an uninterrupted one (`vae_tf.core.categorical.annealed_temperature`).

    Evaluation is on discrete codes, so its figures are those of the discrete model:
    `neg_elbo` with a one-hot draw is an unbiased estimate of the true -ELBO, and
    `log_importance_weights` draws one-hot z ~ q(z|x), so the importance-weighted
    log-likelihood is a true bound of log p(x).

    Codes are flat (batch, N * K), variable i in columns i*K .. i*K + K - 1. `encode`
    gives `probabilities` (the posterior mean E_q[z], the code features and the
    projector read), `one_hot` (the most probable category of each variable) and
    `log_probabilities`; `decode` takes any point of the N simplices; `sample` decodes
    one-hot draws from the uniform prior.

    Args:
        encoder: keras.Model. Images -> [logits, code] with one `GumbelSoftmax` layer
            (`build_categorical_encoder`).
        decoder: keras.Model. Codes (batch, N * K) -> logits (Bernoulli) or means (Gaussian).
        likelihood: str or likelihood layer. Defaults to "bernoulli".
        beta: float. KL weight, >= 0; `self.beta` is a variable a callback may `assign`.
            Defaults to 1.0.
        seed: int or None. Seed for `sample` when it is given no seed. Defaults to None.

    Example:

    >>> model = make_model("gumbel", "mlp", (28, 28, 1), 20, gumbel_categories=10)  # 20 x 10
    >>> model.compile(); model.fit(x_train, epochs=10, batch_size=100)
    >>> images = model.sample(16)
    """

    is_variational = True
    encode_outputs = ("probabilities", "one_hot", "log_probabilities")
    code_name = "probabilities"
    loss_terms = ("loss", "reconstruction", "kl")
    score_term = "neg_elbo"
    # Likelihood regret optimizes a Gaussian posterior's mean and variance: not these codes.
    supported_scores = ("neg_elbo", "iw_nll", "reconstruction", "complexity")
    # neg_elbo and iw_nll draw from a seed generator that advances with every batch.
    graph_scores = ("reconstruction",)
    likelihood_score = "iw_nll"
    held_out_metrics = ("elbo", "iw_log_likelihood")
    default_anomaly_score = "reconstruction"

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, beta=BETA, seed=None, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, seed=seed, **kwargs)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.relaxation = _relaxation_layer(encoder)
        self.relaxation.beta.assign(beta)
        self.categories = self.relaxation.categories
        code_width = encoder.outputs[0].shape[-1]
        if code_width != self.latent_dim:
            raise ValueError(f"the encoder gives {code_width} logits, the decoder takes codes of {self.latent_dim}")
        self.prior = UniformCategorical(self.latent_dim // self.categories, self.categories)

    @property
    def beta(self):
        """The KL weight variable; `model.beta.assign(0.5)` changes it mid-training."""
        return self.relaxation.beta

    @property
    def temperature(self):
        """The relaxation's temperature variable, set by every training step."""
        return self.relaxation.temperature

    @property
    def num_variables(self):
        """N, the number of categorical variables."""
        return self.prior.num_variables

    def training_callbacks(self, beta, kl_warmup_epochs):
        """The KL weight schedule, and the temperature written to the epoch's logs."""
        return [BetaSchedule(beta, kl_warmup_epochs), TemperatureLog()]

    def train_step(self, data):
        # From the optimizer's step count, which checkpoints restore with it.
        self.relaxation.anneal(self.optimizer.iterations)
        return super().train_step(data)

    def _posterior(self, x, labels, training=False):
        """Returns (log-probabilities (batch, N, K), the encoder's code draw (batch, N * K))."""
        logits, code = self.encoder(self.network_inputs(x, labels), training=training)
        return log_probabilities(logits, self.categories), code

    def _flat(self, codes):
        return ops.reshape(codes, (-1, self.latent_dim))

    def encode(self, x, labels=None, training=False):
        """Returns {"probabilities", "one_hot", "log_probabilities"}, each (batch, N * K)."""
        log_probs, _ = self._posterior(self._check_images(x), labels, training)
        mode = ops.one_hot(ops.argmax(log_probs, axis=-1), self.categories)
        return {"probabilities": self._flat(ops.exp(log_probs)), "one_hot": self._flat(mode),
                "log_probabilities": self._flat(log_probs)}

    def _latent_code(self, x, labels, training=False):
        log_probs, code = self._posterior(x, labels, training)
        return code if training else self._flat(ops.exp(log_probs))

    def reconstruction_nll(self, x, labels=None):
        """-log p(x | decoder(probabilities)) per example, in nats: the decoder at E_q[z]."""
        return self._decoder_nll(as_float(x), self.encode(x, labels)["probabilities"], labels)

    def code_log_var(self, x, labels=None):
        """log Var_q(z) per code entry: log q (1 - q) of a one-hot coordinate (clamped)."""
        q = self.encode(x, labels)["probabilities"]
        return clamp_log_var(ops.log(q) + ops.log1p(-q))

    def per_example_terms(self, x, labels=None, seed=None, training=False):
        """Returns per-example "reconstruction", "kl" (exact) and "neg_elbo" (their sum).

        The reconstruction is at the encoder's draw (relaxed in training, one-hot
        otherwise) or, given `seed`, at a one-hot draw with that seed.
        """
        x = self._check_images(x)
        log_probs, code = self._posterior(x, labels, training)
        if seed is not None:
            code = self._flat(one_hot_draws(log_probs, seed))
        reconstruction = self._decoder_nll(x, code, labels, training=training)
        kl = ops.sum(categorical.uniform_kl(log_probs), axis=-1)
        return {"reconstruction": reconstruction, "kl": kl, "neg_elbo": reconstruction + kl}

    def compute_terms(self, x, labels=None, training=False):
        terms = {k: ops.mean(v) for k, v in self.per_example_terms(x, labels, training=training).items()}
        # The GumbelSoftmax layer's added loss: beta * KL, with free bits if set.
        regularizer = ops.sum(ops.stack(self.encoder.losses))
        return {"loss": terms["reconstruction"] + regularizer, "reconstruction": terms["reconstruction"],
                "kl": terms["kl"]}

    def log_importance_weights(self, x, codes, labels=None, num_samples=1, seed=None):
        """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), one-hot z_k ~ q(z|x), k = 1..S.

        Args:
            x: tensor. A batch of images.
            codes: dict. `encode(x, labels)`, computed once for many calls.
            labels: tensor or None. Unused (not conditional).
            num_samples: int. S, >= 1. Defaults to 1.
            seed: seed as `vae_tf.core.categorical.gumbel_noise` takes it. Defaults to None.

        Returns:
            A (S, batch) tensor; logsumexp over S minus log S estimates log p(x).
        """
        x = as_float(x)
        log_probs = ops.reshape(codes["log_probabilities"], (-1, self.num_variables, self.categories))
        z = one_hot_draws(log_probs, seed, num_samples)  # (S, batch, N, K)
        log_q = ops.sum(z * log_probs, axis=(-2, -1))
        batch = ops.shape(x)[0]
        flat_z = ops.reshape(z, (-1, self.latent_dim))
        tiled_x = ops.tile(x, (num_samples,) + (1,) * (len(x.shape) - 1))
        log_px = -ops.reshape(self._decoder_nll(tiled_x, flat_z, None), (num_samples, batch))
        return log_px + ops.reshape(self.prior.log_prob(flat_z), (num_samples, batch)) - log_q

    def get_config(self):
        return {**super().get_config(), "beta": float(ops.convert_to_numpy(self.beta))}


class TemperatureLog(keras.callbacks.Callback):
    """Writes the relaxation's temperature at the end of each epoch to the logs, as `temperature`."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["temperature"] = float(self.model.temperature.numpy())


def gumbel_networks(arch, input_shape, filters, *, latent_dim, hidden_units, dense_units, activation, scaling,
                    free_bits, seed, gumbel_categories, gumbel_temperature, gumbel_temperature_min,
                    gumbel_anneal_rate, gumbel_anneal_every, gumbel_straight_through):
    """The registry's networks: `latent_dim` variables of `gumbel_categories` categories,
    so the encoder gives and the decoder takes latent_dim * K entries."""
    width = latent_dim * gumbel_categories
    if arch == "mlp":
        logits = networks.build_mlp_encoder(input_shape, width, hidden_units, variational=False,
                                            scaling=scaling, activation=activation)
        decoder = networks.build_mlp_decoder(input_shape, width, tuple(reversed(hidden_units)),
                                             scaling=scaling, activation=activation)
    else:
        logits = networks.build_conv_encoder(input_shape, width, filters, variational=False,
                                             dense_units=dense_units, activation=activation)
        decoder = networks.build_conv_decoder(input_shape, width, tuple(reversed(filters)), activation=activation)
    encoder = build_categorical_encoder(
        logits, gumbel_categories, temperature=gumbel_temperature, temperature_min=gumbel_temperature_min,
        anneal_rate=gumbel_anneal_rate, anneal_every=gumbel_anneal_every,
        straight_through=gumbel_straight_through, free_bits=free_bits, seed=seed)
    return encoder, decoder


def _check(options):
    if not options["gumbel_temperature"] > 0:
        raise ValueError(f"gumbel_temperature must be > 0, got {options['gumbel_temperature']!r}")
    if not 0 < options["gumbel_temperature_min"] <= options["gumbel_temperature"]:
        raise ValueError(f"gumbel_temperature_min must be > 0 and <= gumbel_temperature "
                         f"({options['gumbel_temperature']}), got {options['gumbel_temperature_min']!r}")


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, **options):
    # The options are the relaxation's, built into the encoder by `gumbel_networks`.
    return GumbelVAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed)


registry.register(registry.Family(
    name="gumbel",
    summary="categorical VAE (Gumbel-softmax, annealed temperature): discrete codes, likelihoods",
    model_class=GumbelVAE, variational=True, conditional=False, build=_build, networks=gumbel_networks,
    options=(
        registry.Option("gumbel_categories", int, categorical.CATEGORIES,
                        "categories K of each of the --latent-dim categorical variables", minimum=2),
        registry.Option("gumbel_temperature", float, categorical.TEMPERATURE,
                        "Gumbel-softmax temperature at step 0, > 0"),
        registry.Option("gumbel_temperature_min", float, categorical.TEMPERATURE_MIN,
                        "floor of the annealed temperature, in (0, --gumbel-temperature]"),
        registry.Option("gumbel_anneal_rate", float, categorical.ANNEAL_RATE,
                        "r of the temperature schedule max(min, temperature * exp(-r t)); 0: constant",
                        minimum=0.0),
        registry.Option("gumbel_anneal_every", int, categorical.ANNEAL_EVERY,
                        "training steps between temperature updates", minimum=1),
        registry.Option("gumbel_straight_through", bool, False,
                        "one-hot samples in training too, with the relaxed gradient (ST Gumbel-softmax)"),
    ),
    check=_check,
))
