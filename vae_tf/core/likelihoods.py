"""Reconstruction likelihoods p(x|z): negative log-likelihoods in nats per example.

A likelihood turns the decoder's raw output (`params`: logits for Bernoulli, means
for Gaussian) into a per-example negative log-likelihood summed over every pixel,
constants included, and into the data-space mean (`mean`).
"""

import math

import keras
import numpy as np
from keras import ops


def _as_rows(x, params):
    """`x` and float32 `params` (mixed precision decoders give float16/bfloat16) as
    (batch, values) rows. On (batch, height, width, 1) images, XLA's CPU code ran the
    element-wise work so slowly that it took about a tenth of an MLP training step; on
    rows it keeps pace with a hand-written step (README, Performance, ninth round)."""
    batch = ops.shape(params)[0]
    return ops.reshape(x, (batch, -1)), ops.reshape(ops.cast(params, "float32"), (batch, -1))


@keras.saving.register_keras_serializable(package="vae_tf")
class Bernoulli(keras.layers.Layer):
    """Bernoulli pixels: the decoder outputs logits; the NLL is BCE from logits.

    Example:

    >>> nll = Bernoulli().negative_log_likelihood(images, logits)  # shape (batch,)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def negative_log_likelihood(self, x, params):
        """Returns -log p(x | logits=params) per example, in nats."""
        x, params = _as_rows(x, params)
        # BCE from logits: softplus(l) - l * x. Softplus is one stable kernel whose
        # gradient is sigmoid: cheaper than max(l, 0) - l * x + log(1 + exp(-|l|)).
        return ops.sum(ops.softplus(params) - params * x, axis=-1)

    def mean(self, params):
        """Returns the pixel probabilities sigmoid(params), float32."""
        return ops.sigmoid(ops.cast(params, "float32"))

    @staticmethod
    def params_for(mean, clip=1e-3):
        """The logits whose probabilities are `mean` (numpy), clipped to [clip, 1 - clip] so
        a pixel that is always 0 or always 1 gets a finite logit."""
        mean = np.clip(np.asarray(mean, dtype="float64"), clip, 1.0 - clip)
        return np.log(mean / (1.0 - mean)).astype("float32")


@keras.saving.register_keras_serializable(package="vae_tf")
class Gaussian(keras.layers.Layer):
    """Gaussian pixels N(mean=params, sigma^2) with one shared sigma.

    A small fixed sigma weights reconstruction more heavily against the KL term (the
    tutorials' regularization knob); `learn_sigma=True` learns it (as log sigma).

    Args:
        sigma: float. Standard deviation, or its initial value if learned. Must be > 0.
            Defaults to 1.0.
        learn_sigma: bool. Whether sigma is a trainable weight. Defaults to False.

    Example:

    >>> nll = Gaussian(sigma=0.1).negative_log_likelihood(images, means)
    """

    def __init__(self, sigma=1.0, learn_sigma=False, **kwargs):
        super().__init__(**kwargs)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.learn_sigma = bool(learn_sigma)
        self.log_sigma = self.add_weight(
            name="log_sigma",
            shape=(),
            initializer=keras.initializers.Constant(math.log(sigma)),
            trainable=self.learn_sigma,
        )
        self.built = True

    @property
    def sigma(self):
        return ops.exp(self.log_sigma)

    def negative_log_likelihood(self, x, params):
        """Returns -log N(x; params, sigma^2) per example, in nats."""
        x, params = _as_rows(x, params)
        nll = (
            0.5 * ops.square((x - params) / self.sigma)
            + self.log_sigma
            + 0.5 * math.log(2.0 * math.pi)
        )
        return ops.sum(nll, axis=-1)

    def mean(self, params):
        """Returns the means, which are the decoder output itself, as float32."""
        return ops.cast(params, "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "sigma": float(ops.convert_to_numpy(self.sigma)),
            "learn_sigma": self.learn_sigma,
        }


@keras.saving.register_keras_serializable(package="vae_tf")
class FeatureGaussian(keras.layers.Layer):
    """Gaussian features N(mean=params, diag(sigma_j^2)): one learned sigma per feature.

    The heteroscedastic default for tables, where features differ in scale and noise: each
    feature j gets its own trainable log sigma_j, so the negative log-likelihood is in
    nats per record of the raw (unscaled) features.

    Args:
        num_features: int. Number of features F (the decoder outputs (batch, F)).
        sigma: float or sequence of F floats. Initial sigma of each feature, > 0; e.g. the
            training split's standard deviation of each feature. Defaults to 1.0.

    Example:

    >>> likelihood = FeatureGaussian(3, sigma=[1.0, 10.0, 0.1])
    >>> nll = likelihood.negative_log_likelihood(records, means)  # shape (batch,)
    """

    def __init__(self, num_features, sigma=1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be an integer >= 1, got {num_features!r}")
        sigma = np.broadcast_to(np.asarray(sigma, "float64"), (num_features,))
        if not np.all(sigma > 0):
            raise ValueError(f"every sigma must be > 0, got {sigma.tolist()}")
        self.num_features = num_features
        self.log_sigma = self.add_weight(
            name="log_sigma",
            shape=(num_features,),
            initializer=keras.initializers.Constant(np.log(sigma).astype("float32")),
            trainable=True,
        )
        self.built = True

    @property
    def sigma(self):
        return ops.exp(self.log_sigma)

    def negative_log_likelihood(self, x, params):
        """Returns -log N(x; params, diag(sigma^2)) per record, in nats."""
        x, params = _as_rows(x, params)
        nll = 0.5 * ops.square((x - params) / self.sigma) + self.log_sigma + 0.5 * math.log(2.0 * math.pi)
        return ops.sum(nll, axis=-1)

    def mean(self, params):
        """Returns the means, which are the decoder output itself, as float32."""
        return ops.cast(params, "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "num_features": self.num_features,
            "sigma": ops.convert_to_numpy(self.sigma).astype(float).tolist(),
        }


LIKELIHOOD = "bernoulli"  # of images, unless the caller says; tables use feature_gaussian
LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian, "feature_gaussian": FeatureGaussian}


def get(identifier, sigma=None, learn_sigma=False, num_features=None):
    """Returns a likelihood layer from a name or passes an instance through.

    Args:
        identifier: str or likelihood layer. "bernoulli", "gaussian" or "feature_gaussian".
        sigma: float, sequence or None. Gaussian sigma (initial sigma per feature for
            "feature_gaussian"); None means 1.0. Defaults to None.
        learn_sigma: bool. Learn the Gaussian sigma ("feature_gaussian" always learns
            it). Defaults to False.
        num_features: int or None. Features per record; required for "feature_gaussian".

    Returns:
        A `Bernoulli`, `Gaussian` or `FeatureGaussian` layer.
    """
    if isinstance(identifier, (Bernoulli, Gaussian, FeatureGaussian)):
        return identifier
    if identifier == "feature_gaussian":
        if num_features is None:
            raise ValueError("the 'feature_gaussian' likelihood needs num_features (vector inputs (F,))")
        return FeatureGaussian(num_features, sigma=1.0 if sigma is None else sigma)
    if identifier not in LIKELIHOODS:
        raise ValueError(
            f"likelihood must be one of {sorted(LIKELIHOODS)} or a likelihood layer, "
            f"got {identifier!r}"
        )
    if identifier == "gaussian":
        return Gaussian(sigma=1.0 if sigma is None else sigma, learn_sigma=learn_sigma)
    if sigma is not None or learn_sigma:
        raise ValueError("sigma and learn_sigma apply only to the 'gaussian' likelihood")
    return Bernoulli()
