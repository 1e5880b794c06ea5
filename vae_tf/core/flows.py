"""Invertible flows that turn a diagonal Gaussian q(z_0|x) into a richer q(z_T|x).

Each step maps a batch of codes and the encoder's context h to new codes and the log
absolute determinant of its Jacobian, one per example; `Flow` chains T of them. Then
log q(z_T|x) = log N(z_0; mu, sigma^2) - sum_t log|det dz_t/dz_{t-1}|.

- `PlanarStep`: f(z) = z + u_hat tanh(w.z + b) (Rezende & Mohamed, "Variational Inference
  with Normalizing Flows", ICML 2015, eq. 10-12), invertible through the u_hat of their
  appendix A. Its parameters u, w, b are amortized: a linear map of h per example, as the
  paper's inference network outputs the flow parameters with mu and sigma (section 4).
- `IAFStep`: inverse autoregressive flow (Kingma, Salimans, Jozefowicz, Chen, Sutskever &
  Welling, "Improved Variational Inference with Inverse Autoregressive Flow", NeurIPS
  2016, eq. 10-14): [m, s] = MADE(z, h), sigma = sigmoid(s), z' = sigma z + (1 - sigma) m,
  log|det| = sum log sigma. Consecutive steps use reversed variable orders.
"""

import keras
import numpy as np
from keras import ops

FLOWS = ("planar", "iaf")
FLOW_STEPS = 2  # the IAF paper's smallest MNIST configuration (depth 2)
FLOW_HIDDEN_UNITS = 320  # the width of its autoregressive networks there
# The paper's section 4: start s "sufficiently positive, such as close to +1 or +2", so
# each step begins close to the identity (sigma = sigmoid(1) = 0.73).
SCALE_BIAS = 1.0
# |w|^2 below this is treated as this, so the planar correction never divides by zero.
_MIN_SQUARED_NORM = 1e-12


def made_masks(latent_dim, hidden_units, reverse=False):
    """The masks of a one-hidden-layer MADE with a context input (Germain, Gregor, Murray &
    Larochelle, "MADE: Masked Autoencoder for Distribution Estimation", ICML 2015, eq. 12-13).

    Input i has degree d(i), its position in the order (1..D, or D..1 with `reverse`);
    hidden unit k has degree k mod D in 0..D-1 and sees the inputs of degree <= its own
    (degree 0: the context only); output i sees the hidden units of degree < d(i). So
    output i depends on the inputs before it in the order, and on the context.

    Args:
        latent_dim: int. D, >= 1.
        hidden_units: int. H, >= 1.
        reverse: bool. Use the order D..1. Defaults to False.

    Returns:
        (input mask (D, H), output mask (H, D)), float32 numpy arrays of 0 and 1.

    Example:

    >>> inputs, outputs = made_masks(3, 4)
    >>> (inputs @ outputs)[:, 0]   # output 0 sees no input: [0, 0, 0]
    """
    order = np.arange(1, latent_dim + 1)
    if reverse:
        order = order[::-1]
    hidden = np.arange(hidden_units) % latent_dim
    input_mask = hidden[None, :] >= order[:, None]
    output_mask = order[None, :] > hidden[:, None]
    return input_mask.astype("float32"), output_mask.astype("float32")


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _dims(input_shape):
    """(latent_dim, context_dim) from the shapes of [z, context]."""
    z_shape, context_shape = input_shape
    return int(z_shape[-1]), int(context_shape[-1])


def _step_output_spec(layer, inputs):
    """What every step (and `Flow`) returns for [z, context]: z' like z, one log-determinant per row."""
    z, _ = inputs
    return (keras.KerasTensor(z.shape, z.dtype), keras.KerasTensor(z.shape[:1], z.dtype))


@keras.saving.register_keras_serializable(package="vae_tf")
class PlanarStep(keras.layers.Layer):
    """One planar flow step with parameters amortized from the context h.

    [u, w, b] = h W + c per example; u_hat = u + (m(w.u) - w.u) w / |w|^2 with
    m(x) = -1 + softplus(x), so w.u_hat = m(w.u) > -1 and the step is invertible
    (Rezende & Mohamed 2015, appendix A); z' = z + u_hat tanh(w.z + b) and
    log|det dz'/dz| = log|1 + (1 - tanh^2(w.z + b)) w.u_hat| (eq. 10-12).

    Example:

    >>> step = PlanarStep()
    >>> z_next, log_det = step([z, context])   # (batch, D), (batch,)
    """

    def build(self, input_shape):
        latent_dim, context_dim = _dims(input_shape)
        self.latent_dim = latent_dim
        self.kernel = self.add_weight(name="kernel", shape=(context_dim, 2 * latent_dim + 1),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(2 * latent_dim + 1,), initializer="zeros")

    def parameters(self, context):
        """Returns (u_hat, w, b, margin) of each example: (batch, D), (batch, D), (batch,),
        (batch,), where margin = 1 + w.u_hat = softplus(w.u) > 0 (the invertibility condition)."""
        params = ops.matmul(context, self.kernel) + self.bias
        d = self.latent_dim
        u, w, b = params[:, :d], params[:, d:2 * d], params[:, 2 * d]
        w_dot_u = ops.sum(w * u, axis=-1, keepdims=True)
        margin = ops.softplus(w_dot_u)
        squared_norm = ops.maximum(ops.sum(ops.square(w), axis=-1, keepdims=True), _MIN_SQUARED_NORM)
        u_hat = u + (margin - 1.0 - w_dot_u) * w / squared_norm
        return u_hat, w, b, margin[:, 0]

    def call(self, inputs):
        z, context = inputs
        u_hat, w, b, margin = self.parameters(context)
        activation = ops.tanh(ops.sum(w * z, axis=-1) + b)
        # det = 1 + (1 - t^2) w.u_hat, written t^2 + (1 - t^2) (1 + w.u_hat): the same
        # number, and positive in floating point too.
        squared = ops.square(activation)
        return z + u_hat * activation[:, None], ops.log(squared + (1.0 - squared) * margin)

    compute_output_spec = _step_output_spec


@keras.saving.register_keras_serializable(package="vae_tf")
class IAFStep(keras.layers.Layer):
    """One inverse autoregressive flow step in the numerically stable form.

    A MADE (`made_masks`) with one hidden layer of `hidden_units` ELUs, which also sees
    the context h unmasked, gives m and s; sigma = sigmoid(s),
    z' = sigma z + (1 - sigma) m and log|det dz'/dz| = sum log sigma (Kingma et al. 2016,
    eq. 10-14). dz'_i/dz_j = 0 for every j at or after i in the step's order: the
    Jacobian is triangular with diagonal sigma.

    Args:
        hidden_units: int. Width of the autoregressive network, >= 1. Defaults to
            `FLOW_HIDDEN_UNITS`.
        reverse: bool. Order the variables D..1 instead of 1..D. Defaults to False.

    Example:

    >>> step = IAFStep(64, reverse=True)
    >>> z_next, log_det = step([z, context])   # (batch, D), (batch,)
    """

    def __init__(self, hidden_units=FLOW_HIDDEN_UNITS, reverse=False, **kwargs):
        super().__init__(**kwargs)
        _check_positive("hidden_units", hidden_units)
        self.hidden_units = hidden_units
        self.reverse = bool(reverse)

    def build(self, input_shape):
        latent_dim, context_dim = _dims(input_shape)
        # The masks follow from the shapes and the order: constants, not weights.
        self.input_mask, self.output_mask = made_masks(latent_dim, self.hidden_units, self.reverse)
        h = self.hidden_units
        self.z_kernel = self.add_weight(name="z_kernel", shape=(latent_dim, h), initializer="glorot_uniform")
        self.context_kernel = self.add_weight(name="context_kernel", shape=(context_dim, h),
                                              initializer="glorot_uniform")
        self.hidden_bias = self.add_weight(name="hidden_bias", shape=(h,), initializer="zeros")
        self.shift_kernel = self.add_weight(name="shift_kernel", shape=(h, latent_dim), initializer="glorot_uniform")
        self.shift_bias = self.add_weight(name="shift_bias", shape=(latent_dim,), initializer="zeros")
        self.scale_kernel = self.add_weight(name="scale_kernel", shape=(h, latent_dim), initializer="glorot_uniform")
        self.scale_bias = self.add_weight(name="scale_bias", shape=(latent_dim,),
                                          initializer=keras.initializers.Constant(SCALE_BIAS))

    def shift_and_scale(self, z, context):
        """Returns (m, s), the autoregressive network's outputs, each (batch, D)."""
        hidden = ops.elu(ops.matmul(z, self.z_kernel * self.input_mask)
                         + ops.matmul(context, self.context_kernel) + self.hidden_bias)
        shift = ops.matmul(hidden, self.shift_kernel * self.output_mask) + self.shift_bias
        scale = ops.matmul(hidden, self.scale_kernel * self.output_mask) + self.scale_bias
        return shift, scale

    def call(self, inputs):
        z, context = inputs
        shift, scale = self.shift_and_scale(z, context)
        # 1 - sigmoid(s) = sigmoid(-s) and log sigmoid(s) = -softplus(-s): accurate for
        # large s, where the step is the identity.
        z_next = ops.sigmoid(scale) * z + ops.sigmoid(-scale) * shift
        return z_next, -ops.sum(ops.softplus(-scale), axis=-1)

    compute_output_spec = _step_output_spec

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units, "reverse": self.reverse}


@keras.saving.register_keras_serializable(package="vae_tf")
class Flow(keras.layers.Layer):
    """T flow steps of one kind applied in turn: (z_0, h) -> (z_T, sum_t log|det dz_t/dz_{t-1}|).

    Args:
        kind: str. "planar" or "iaf" (`FLOWS`).
        steps: int. T, >= 0; 0 is the identity with log-determinant 0.
        hidden_units: int. Width of each IAF step's autoregressive network, >= 1 (planar
            steps have none). Defaults to `FLOW_HIDDEN_UNITS`.

    Example:

    >>> flow = Flow("iaf", 2, 64)
    >>> z_t, log_det = flow([z_0, context])
    """

    def __init__(self, kind, steps=FLOW_STEPS, hidden_units=FLOW_HIDDEN_UNITS, **kwargs):
        super().__init__(**kwargs)
        if kind not in FLOWS:
            raise ValueError(f"flow must be one of {FLOWS}, got {kind!r}")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"flow_steps must be an integer >= 0, got {steps!r}")
        _check_positive("flow_hidden_units", hidden_units)
        self.kind, self.steps, self.hidden_units = kind, steps, hidden_units
        policy = self.dtype_policy  # the steps compute as the flow does
        if kind == "planar":
            self.flow_steps = [PlanarStep(name=f"planar_{t}", dtype=policy) for t in range(steps)]
        else:  # the order reversed from one step to the next (the paper's section 4)
            self.flow_steps = [IAFStep(hidden_units, reverse=t % 2 == 1, name=f"iaf_{t}", dtype=policy)
                               for t in range(steps)]

    def build(self, input_shape):
        for step in self.flow_steps:
            step.build(input_shape)

    def call(self, inputs):
        z, context = inputs
        log_det = ops.zeros(ops.shape(z)[:1], dtype=z.dtype)
        for step in self.flow_steps:
            z, step_log_det = step([z, context])
            log_det = log_det + step_log_det
        return z, log_det

    compute_output_spec = _step_output_spec

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "steps": self.steps,
                "hidden_units": self.hidden_units}
