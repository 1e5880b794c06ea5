"""Functional builders for MLP and convolutional encoders and decoders.

Encoders take `images` (and, with `num_classes`, an integer `label`); a variational
encoder outputs `[z_mean, z_log_var, z]` with a `Sampling` layer inside, a
deterministic one outputs `z`. Decoders take `z` (and `label`) and output logits or
means with exactly the image shape. The MLP builders' dense layers start as PyTorch's
`nn.Linear` does (`linear`), which trains to better likelihoods than Keras's default.
"""

import math

import keras
import numpy as np
from keras import layers

from vae_tf.core.layers import OneHot, Sampling

HIDDEN_UNITS = (400,)  # MLP encoder widths (the tutorials'); decoders mirror them
FILTERS = (32, 64)  # conv encoder filters; decoders mirror them
ACTIVATION = "relu"  # of every hidden layer (the IWAE paper's networks use "tanh")
ACTIVATIONS = ("relu", "tanh", "elu", "softplus", "gelu")


def _check_positive_ints(name, values, allow_empty=False):
    values = tuple(values)
    if not values and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if not all(isinstance(v, int) and v >= 1 for v in values):
        raise ValueError(f"{name} must be positive integers, got {values}")
    return values


def _check_shape(name, shape, ranks):
    shape = tuple(shape)
    if len(shape) not in ranks or not all(isinstance(d, int) and d >= 1 for d in shape):
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"{name} must be {expected} positive integers (H, W, C for images), got {shape}"
        )
    return shape


def _check_latent_dim(latent_dim):
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim}")


def _label_input(num_classes):
    """Returns the integer `label` input and its one-hot encoding, or (None, None)."""
    if num_classes is None:
        return None, None
    label = keras.Input(shape=(), dtype="int32", name="label")
    return label, OneHot(num_classes, name="label_one_hot")(label)


def linear(units, **kwargs):
    """A `Dense` layer initialized as PyTorch's `nn.Linear`: weights and biases drawn from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in read from the features it is applied to.

    Keras's default (Glorot-uniform weights, zero biases) cost 0.3 nats of test NLL on
    binarized MNIST with the 784-400-20 MLP VAE after 10 epochs (docs/guides/defaults.md);
    the MLP builders use this instead.

    Args:
        units: int. Output width.
        **kwargs: other `keras.layers.Dense` arguments (activation, name, dtype).

    Returns:
        A function from a (batch, fan_in) tensor to the layer's output.

    Example:

    >>> hidden = linear(400, activation="relu", name="dense_0")(keras.Input((784,)))
    """
    def apply(features):
        limit = 1.0 / math.sqrt(features.shape[-1])
        uniform = lambda: keras.initializers.RandomUniform(-limit, limit)  # noqa: E731
        return layers.Dense(units, kernel_initializer=uniform(), bias_initializer=uniform(), **kwargs)(features)

    return apply


def _latent_head(features, latent_dim, variational, sampling_kwargs, dense=layers.Dense):
    # The code and the KL term stay float32 under a mixed precision policy: these
    # layers are small, and log-variances and KL lose too much in bfloat16 or float16.
    if not variational:
        return dense(latent_dim, name="z", dtype="float32")(features)
    z_mean = dense(latent_dim, name="z_mean", dtype="float32")(features)
    z_log_var = dense(latent_dim, name="z_log_var", dtype="float32")(features)
    z = Sampling(name="sampling", dtype="float32", **sampling_kwargs)([z_mean, z_log_var])
    return [z_mean, z_log_var, z]


def _scaling_layer(scaling, input_shape, invert, name):
    """A `Normalization` holding the training split's per-feature (mean, variance), or None.

    Inside the encoder it standardizes raw records; inverted at the decoder output it
    maps the decoder's standardized means back to raw units, so a saved model takes and
    returns raw records.
    """
    if scaling is None:
        return None
    if len(input_shape) != 1:
        raise ValueError(f"scaling applies to vector inputs (F,), not shape {input_shape}")
    mean, variance = (np.asarray(v, "float32").reshape(-1) for v in scaling)
    if mean.shape != input_shape or variance.shape != input_shape or not np.all(variance > 0):
        raise ValueError(f"scaling must be (mean, variance) of {input_shape[0]} features with "
                         f"variance > 0, got shapes {mean.shape} and {variance.shape}")
    return layers.Normalization(mean=mean, variance=variance, invert=invert, name=name, dtype="float32")


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _model(inputs, label, outputs, name):
    return keras.Model(inputs if label is None else [inputs, label], outputs, name=name)


def build_mlp_encoder(
    input_shape,
    latent_dim,
    hidden_units=HIDDEN_UNITS,
    num_classes=None,
    variational=True,
    scaling=None,
    activation=ACTIVATION,
    **sampling_kwargs,
):
    """Builds a multilayer-perceptron encoder.

    Args:
        input_shape: tuple. Shape of one example: (D,), (H, W) or (H, W, C).
        latent_dim: int. Size of z, >= 1.
        hidden_units: tuple of int. Widths of the hidden layers. Defaults to `HIDDEN_UNITS`.
        num_classes: int or None. Adds a `label` input, one-hot encoded and
            concatenated to the flattened image. Defaults to None.
        variational: bool. Output `[z_mean, z_log_var, z]` rather than `z`.
            Defaults to True.
        scaling: (mean, variance) or None. Vector inputs (F,) only: the training
            split's per-feature mean and variance; a `Normalization` standardizes the
            raw records first. Defaults to None.
        activation: str. Of the hidden layers, one of `ACTIVATIONS`. Defaults to `ACTIVATION`.
        **sampling_kwargs: `beta`, `free_bits`, `seed` for the `Sampling` layer.

    Returns:
        A functional `keras.Model` named "mlp_encoder".

    Example:

    >>> encoder = build_mlp_encoder((28, 28, 1), latent_dim=20)
    """
    input_shape = _check_shape("input_shape", input_shape, (1, 2, 3))
    _check_latent_dim(latent_dim)
    hidden_units = _check_positive_ints("hidden_units", hidden_units, allow_empty=True)
    _check_activation(activation)
    normalize = _scaling_layer(scaling, input_shape, invert=False, name="standardize")
    images = keras.Input(shape=input_shape, name="images" if normalize is None else "features")
    label, one_hot = _label_input(num_classes)
    x = layers.Flatten(name="flatten")(images if normalize is None else normalize(images))
    if one_hot is not None:
        x = layers.Concatenate(name="condition")([x, one_hot])
    for i, units in enumerate(hidden_units):
        x = linear(units, activation=activation, name=f"dense_{i}")(x)
    outputs = _latent_head(x, latent_dim, variational, sampling_kwargs, dense=linear)
    return _model(images, label, outputs, "mlp_encoder")


def build_mlp_decoder(output_shape, latent_dim, hidden_units=HIDDEN_UNITS[::-1], num_classes=None, scaling=None,
                      activation=ACTIVATION):
    """Builds a multilayer-perceptron decoder returning logits or means.

    Args:
        output_shape: tuple. Shape of one example, as the encoder's input_shape.
        latent_dim: int. Size of z, >= 1.
        hidden_units: tuple of int. Widths of the hidden layers, applied in this order.
            Defaults to `HIDDEN_UNITS` reversed.
        num_classes: int or None. Adds a `label` input concatenated to z.
            Defaults to None.
        scaling: (mean, variance) or None. Vector outputs (F,) only: the inverse
            `Normalization` maps the standardized output back to raw units (the means of
            a Gaussian likelihood). Defaults to None.
        activation: str. Of the hidden layers, one of `ACTIVATIONS`. Defaults to `ACTIVATION`.

    Returns:
        A functional `keras.Model` named "mlp_decoder" with output shape `output_shape`.

    Example:

    >>> decoder = build_mlp_decoder((28, 28, 1), latent_dim=20)
    """
    output_shape = _check_shape("output_shape", output_shape, (1, 2, 3))
    _check_latent_dim(latent_dim)
    hidden_units = _check_positive_ints("hidden_units", hidden_units, allow_empty=True)
    _check_activation(activation)
    z = keras.Input(shape=(latent_dim,), name="z")
    label, one_hot = _label_input(num_classes)
    x = z if one_hot is None else layers.Concatenate(name="condition")([z, one_hot])
    for i, units in enumerate(hidden_units):
        x = linear(units, activation=activation, name=f"dense_{i}")(x)
    x = linear(math.prod(output_shape), name="dense_out")(x)
    outputs = layers.Reshape(output_shape, name="decoded")(x)
    unscale = _scaling_layer(scaling, tuple(output_shape), invert=True, name="unstandardize")
    if unscale is not None:
        outputs = unscale(outputs)
    return _model(z, label, outputs, "mlp_decoder")


def build_conv_encoder(
    input_shape,
    latent_dim,
    filters=FILTERS,
    num_classes=None,
    variational=True,
    dense_units=None,
    activation=ACTIVATION,
    **sampling_kwargs,
):
    """Builds a convolutional encoder: stride-2 3x3 convolutions, then dense heads.

    Works for any image size; each convolution halves H and W (rounding up).

    Args:
        input_shape: tuple. (H, W, C).
        latent_dim: int. Size of z, >= 1.
        filters: tuple of int. Filters of each stride-2 convolution. Defaults to `FILTERS`.
        num_classes: int or None. Adds a `label` input whose one-hot encoding is
            appended to the image as constant channels. Defaults to None.
        variational: bool. Output `[z_mean, z_log_var, z]` rather than `z`.
            Defaults to True.
        dense_units: int or None. Width of a dense layer between the
            convolutions and the latent heads; None for none. Defaults to None.
        activation: str. Of the hidden layers, one of `ACTIVATIONS`. Defaults to `ACTIVATION`.
        **sampling_kwargs: `beta`, `free_bits`, `seed` for the `Sampling` layer.

    Returns:
        A functional `keras.Model` named "conv_encoder".

    Example:

    >>> encoder = build_conv_encoder((250, 250, 3), latent_dim=64)
    """
    input_shape = _check_shape("input_shape", input_shape, (3,))
    _check_latent_dim(latent_dim)
    filters = _check_positive_ints("filters", filters)
    _check_activation(activation)
    height, width, _ = input_shape
    images = keras.Input(shape=input_shape, name="images")
    label, one_hot = _label_input(num_classes)
    x = images
    if one_hot is not None:
        planes = layers.RepeatVector(height * width, name="label_repeat")(one_hot)
        planes = layers.Reshape((height, width, num_classes), name="label_planes")(planes)
        x = layers.Concatenate(name="condition")([x, planes])
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation=activation, name=f"conv_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if dense_units is not None:
        (dense_units,) = _check_positive_ints("dense_units", (dense_units,))
        x = layers.Dense(dense_units, activation=activation, name="dense")(x)
    outputs = _latent_head(x, latent_dim, variational, sampling_kwargs)
    return _model(images, label, outputs, "conv_encoder")


def build_conv_decoder(output_shape, latent_dim, filters=FILTERS[::-1], num_classes=None, activation=ACTIVATION):
    """Builds a convolutional decoder mirroring `build_conv_encoder`.

    A dense layer makes a (ceil(H / 2^n), ceil(W / 2^n), filters[0]) map; n stride-2
    transposed convolutions double it; a last transposed convolution maps to C
    channels, and any excess rows or columns are cropped so the output is exactly
    `output_shape`.

    Args:
        output_shape: tuple. (H, W, C).
        latent_dim: int. Size of z, >= 1.
        filters: tuple of int. Filters of each stride-2 transposed convolution.
            Defaults to `FILTERS` reversed.
        num_classes: int or None. Adds a `label` input concatenated to z.
            Defaults to None.
        activation: str. Of the hidden layers, one of `ACTIVATIONS`. Defaults to `ACTIVATION`.

    Returns:
        A functional `keras.Model` named "conv_decoder".

    Example:

    >>> decoder = build_conv_decoder((250, 250, 3), latent_dim=64)
    """
    output_shape = _check_shape("output_shape", output_shape, (3,))
    _check_latent_dim(latent_dim)
    filters = _check_positive_ints("filters", filters)
    _check_activation(activation)
    height, width, channels = output_shape
    scale = 2 ** len(filters)
    start_h, start_w = math.ceil(height / scale), math.ceil(width / scale)
    z = keras.Input(shape=(latent_dim,), name="z")
    label, one_hot = _label_input(num_classes)
    x = z if one_hot is None else layers.Concatenate(name="condition")([z, one_hot])
    x = layers.Dense(start_h * start_w * filters[0], activation=activation, name="dense")(x)
    x = layers.Reshape((start_h, start_w, filters[0]), name="reshape")(x)
    for i, f in enumerate(filters):
        x = layers.Conv2DTranspose(
            f, 3, strides=2, padding="same", activation=activation, name=f"deconv_{i}"
        )(x)
    x = layers.Conv2DTranspose(channels, 3, padding="same", name="deconv_out")(x)
    extra_h, extra_w = start_h * scale - height, start_w * scale - width
    if extra_h or extra_w:
        crop = ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2))
        x = layers.Cropping2D(crop, name="crop")(x)
    outputs = layers.Identity(name="decoded")(x)
    return _model(z, label, outputs, "conv_decoder")
