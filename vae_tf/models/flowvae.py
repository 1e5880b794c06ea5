"""The VAE with a flow posterior: a diagonal Gaussian q(z_0|x) pushed through T invertible
steps (planar or inverse autoregressive flow, `vae_tf.core.flows`)."""

import keras
from keras import ops

from vae_tf.core import flows, priors
from vae_tf.core.layers import BETA, reparameterize
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.models import registry
from vae_tf.models.base import as_float
from vae_tf.models.vae import VAE

_ENCODER_OUTPUTS = 4  # z_mean, z_log_var, z_0 (the Sampling layer's draw), context h


def with_context(encoder):
    """The same encoder (shared layers) that also outputs its last hidden features as the
    context h the flow steps read: the input of its `z_mean` layer.

    Args:
        encoder: keras.Model. A `vae_tf.core.networks` variational encoder, outputs
            `[z_mean, z_log_var, z]` from a layer named "z_mean".

    Returns:
        A functional `keras.Model` with outputs `[z_mean, z_log_var, z, context]`.

    Example:

    >>> encoder = with_context(build_mlp_encoder((28, 28, 1), 20))
    """
    context = encoder.get_layer("z_mean").input
    return keras.Model(encoder.inputs, [*encoder.outputs, context], name=encoder.name)


@keras.saving.register_keras_serializable(package="vae_tf")
class FlowVAE(VAE):
    """VAE whose posterior q(z_T|x) is a diagonal Gaussian followed by T flow steps.

    The encoder gives mu, sigma and a context h; z_0 ~ N(mu, sigma^2) and
    z_T = f_T(...f_1(z_0; h)...; h), with log q(z_T|x) = log N(z_0; mu, sigma^2)
    - sum_t log|det df_t/dz| (Rezende & Mohamed, "Variational Inference with Normalizing
    Flows", ICML 2015, eq. 13; Kingma et al., "Improved Variational Inference with Inverse
    Autoregressive Flow", NeurIPS 2016, Algorithm 1). `loss` is
    reconstruction + beta * KL, the KL estimated at the draw as
    KL(N(mu, sigma^2) || N(0, I)) + log p(z_0) - log p(z_T) - sum_t log|det|: the same
    expectation as the one-draw log q(z_T|x) - log p(z_T), with the Gaussian part exact,
    so that zero steps (or identity steps) give the VAE's loss for the same noise.
    Importance weights use the exact density log q(z_T|x). The prior is N(0, I): sampling
    needs no flow.

    Codes: `encode` returns z_mean, z_log_var and the context of the base Gaussian, and
    `z_flow`, the flow applied to z_mean (the mean path, no noise): the code `reconstruct`,
    the latent features and the projector use. `code_log_var` is the base Gaussian's.

    Args:
        encoder: keras.Model. Images -> `[z_mean, z_log_var, z, context]`, with exactly one
            `vae_tf.Sampling` layer (`with_context` makes one from a VAE encoder).
        decoder, likelihood, beta, seed: as for `VAE`.
        prior: None or `vae_tf.core.priors.StandardNormal`. Only N(0, I). Defaults to None.
        flow: str. "planar" or "iaf". Defaults to "iaf".
        flow_steps: int. T, >= 0. Defaults to `flows.FLOW_STEPS`.
        flow_hidden_units: int. Width of each IAF step's autoregressive network, >= 1.
            Defaults to `flows.FLOW_HIDDEN_UNITS`.

    Example:

    >>> model = make_model("flowvae", "mlp", (28, 28, 1), 20, flow="iaf", flow_steps=2)
    >>> model.compile(); model.fit(x_train, epochs=10)
    """

    encode_outputs = ("z_mean", "z_log_var", "context", "z_flow")
    code_name = "z_flow"
    # Regret optimizes a diagonal Gaussian decoded without the flow: not this posterior.
    supported_scores = ("neg_elbo", "iw_nll", "reconstruction", "complexity")
    graph_scores = ("reconstruction",)
    default_anomaly_score = "reconstruction"
    nested_objects = ("encoder", "decoder", "likelihood", "prior")

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, beta=BETA, seed=None, prior=None,
                 flow="iaf", flow_steps=flows.FLOW_STEPS, flow_hidden_units=flows.FLOW_HIDDEN_UNITS,
                 **kwargs):
        if len(encoder.outputs) != _ENCODER_OUTPUTS:
            raise ValueError(f"encoder {encoder.name!r} must output [z_mean, z_log_var, z, context] "
                             f"(vae_tf.models.flowvae.with_context), it has {len(encoder.outputs)} outputs")
        if prior is not None and not isinstance(prior, priors.StandardNormal):
            raise ValueError(f"FlowVAE takes only the standard normal prior, got {type(prior).__name__}")
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed, prior=prior, **kwargs)
        if self.sampling.free_bits:
            raise ValueError("free_bits does not apply to FlowVAE: its KL is estimated at the draw")
        # float32 under a mixed precision policy, as the latent heads: log-determinants
        # lose too much in bfloat16 or float16.
        self.flow = flows.Flow(flow, flow_steps, flow_hidden_units, name="flow", dtype="float32")
        self.flow.build([(None, self.latent_dim), tuple(encoder.outputs[3].shape)])

    def _push(self, z, context):
        """(z_T, sum log|det|) of codes z (..., D) with the contexts of their examples."""
        shape = ops.shape(z)
        flat = ops.reshape(z, (-1, self.latent_dim))
        repeats = ops.shape(flat)[0] // ops.shape(context)[0]
        z_t, log_det = self.flow([flat, ops.tile(context, (repeats, 1))])
        return ops.reshape(z_t, shape), ops.reshape(log_det, shape[:-1])

    def encode(self, x, labels=None, training=False):
        """Returns {"z_mean", "z_log_var", "context"} of q(z_0|x) and "z_flow", the flow
        applied to z_mean."""
        z_mean, z_log_var, _, context = self._posterior(self._check_images(x), labels, training)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "context": context,
                "z_flow": self._push(z_mean, context)[0]}

    def _latent_code(self, x, labels, training=False):
        z_mean, _, z, context = self._posterior(x, labels, training)
        return self._push(z if training else z_mean, context)[0]

    def reconstruction_nll(self, x, labels=None):
        """-log p(x | decoder(z_flow)) per example, in nats: the decoder at the mean path's code."""
        return self._decoder_nll(as_float(x), self.encode(x, labels)["z_flow"], labels)

    def per_example_terms(self, x, labels=None, seed=None, training=False):
        """Returns per-example "reconstruction", "kl" (the estimate above) and "neg_elbo"."""
        x = self._check_images(x)
        z_mean, z_log_var, z, context = self._posterior(x, labels, training)
        if seed is not None:
            z = reparameterize(z_mean, z_log_var, seed)
        z_t, log_det = self._push(z, context)
        reconstruction = self._decoder_nll(x, z_t, labels, training=training)
        kl = (self.prior.kl(z_mean, z_log_var, z) + self.prior.log_prob(z)
              - self.prior.log_prob(z_t) - log_det)
        return {"reconstruction": reconstruction, "kl": kl, "neg_elbo": reconstruction + kl}

    def compute_terms(self, x, labels=None, training=False):
        terms = {k: ops.mean(v) for k, v in self.per_example_terms(x, labels, training=training).items()}
        return {"loss": terms["reconstruction"] + self.beta * terms["kl"],
                "reconstruction": terms["reconstruction"], "kl": terms["kl"]}

    def log_importance_weights(self, x, codes, labels=None, num_samples=1, seed=None):
        """log w_k = log p(x|z_T,k) + log p(z_T,k) - log q(z_T,k|x), z_T,k ~ q(z_T|x).

        log q(z_T|x) = log N(z_0; z_mean, exp(z_log_var)) - sum_t log|det|, the flow's
        exact density; arguments and result as `VAE.log_importance_weights`.
        """
        z_mean, z_log_var = codes["z_mean"], codes["z_log_var"]
        z = reparameterize(z_mean, z_log_var, seed, num_samples)
        z_t, log_det = self._push(z, codes["context"])
        x = as_float(x)
        flat_labels = None if labels is None else ops.tile(labels, (num_samples,))
        tiled_x = ops.tile(x, (num_samples,) + (1,) * (len(x.shape) - 1))
        flat_z = ops.reshape(z_t, (-1, self.latent_dim))
        log_px = -ops.reshape(self._decoder_nll(tiled_x, flat_z, flat_labels), ops.shape(log_det))
        log_q = priors.gaussian_log_prob(z, z_mean, z_log_var) - log_det
        return log_px + self.prior.log_prob(z_t) - log_q

    def get_config(self):
        return {**super().get_config(), "flow": self.flow.kind, "flow_steps": self.flow.steps,
                "flow_hidden_units": self.flow.hidden_units}


def _check(options):
    if options["flow"] != "iaf" and options["flow_hidden_units"] != flows.FLOW_HIDDEN_UNITS:
        raise ValueError(f"flow_hidden_units applies only to flow 'iaf', got {options['flow_hidden_units']} "
                         f"with flow {options['flow']!r}")


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, flow, flow_steps,
           flow_hidden_units):
    return FlowVAE(with_context(encoder), decoder, likelihood=likelihood, beta=beta, seed=seed,
                   flow=flow, flow_steps=flow_steps, flow_hidden_units=flow_hidden_units)


registry.register(registry.Family(
    name="flowvae",
    summary="VAE with a flow posterior (planar or inverse autoregressive flow): tighter bounds",
    model_class=FlowVAE, variational=True, conditional=False, build=_build, check=_check,
    options=(
        registry.Option("flow", str, "iaf", "posterior flow: inverse autoregressive (iaf) or planar",
                        choices=flows.FLOWS),
        registry.Option("flow_steps", int, flows.FLOW_STEPS, "flow steps T after the Gaussian encoder",
                        minimum=0),
        registry.Option("flow_hidden_units", int, flows.FLOW_HIDDEN_UNITS,
                        "width of each IAF step's autoregressive network (--flow iaf)", minimum=1),
    ),
))
