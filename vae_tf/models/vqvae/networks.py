"""The VQ-VAE's own networks: a convolutional encoder to a grid of code vectors and the
decoder mirroring it."""

import math

import keras
from keras import layers

from vae_tf.core.networks import FILTERS


def _check_builder_args(shape, embedding_dim, filters):
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise ValueError(f"image shape must be three positive integers (H, W, C), got {shape}")
    if not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise ValueError(f"embedding_dim must be an integer >= 1, got {embedding_dim!r}")
    filters = tuple(filters)
    if not filters or not all(isinstance(f, int) and f >= 1 for f in filters):
        raise ValueError(f"filters must be a non-empty tuple of positive integers, got {filters}")
    return shape, filters


def code_grid_shape(input_shape, num_downsamplings):
    """Returns (H', W') = (ceil(H / 2^n), ceil(W / 2^n)), the code grid of an image."""
    scale = 2**num_downsamplings
    return math.ceil(input_shape[0] / scale), math.ceil(input_shape[1] / scale)


def build_vq_encoder(input_shape, embedding_dim, filters=FILTERS):
    """Builds a convolutional encoder from images to a grid of `embedding_dim` vectors.

    Each stride-2 3x3 ReLU convolution halves H and W (rounding up); a 3x3 ReLU
    convolution and a linear 1x1 convolution to `embedding_dim` channels follow.

    Args:
        input_shape: tuple. (H, W, C).
        embedding_dim: int. Channels of z_e, the codebook vector size.
        filters: tuple of int. Filters of each stride-2 convolution. Defaults to `FILTERS`.

    Returns:
        A functional `keras.Model` "vq_encoder": (H, W, C) -> (H', W', embedding_dim).

    Example:

    >>> build_vq_encoder((28, 28, 1), 16).output_shape  # (None, 7, 7, 16)
    """
    input_shape, filters = _check_builder_args(input_shape, embedding_dim, filters)
    images = keras.Input(shape=input_shape, name="images")
    x = images
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"conv_{i}")(x)
    x = layers.Conv2D(filters[-1], 3, padding="same", activation="relu", name="conv_mix")(x)
    z_e = layers.Conv2D(embedding_dim, 1, name="z_e", dtype="float32")(x)
    return keras.Model(images, z_e, name="vq_encoder")


def build_vq_decoder(output_shape, embedding_dim, filters=FILTERS[::-1]):
    """Builds the decoder mirroring `build_vq_encoder`: quantized grid -> logits or means.

    A 3x3 ReLU convolution, one stride-2 transposed convolution per filter, a last
    transposed convolution to C channels, and a crop of any excess rows or columns.

    Args:
        output_shape: tuple. (H, W, C).
        embedding_dim: int. Channels of the quantized grid.
        filters: tuple of int. Filters of each stride-2 transposed convolution.
            Defaults to `FILTERS` reversed.

    Returns:
        A functional `keras.Model` "vq_decoder": (H', W', embedding_dim) -> (H, W, C).

    Example:

    >>> build_vq_decoder((28, 28, 1), 16).input_shape  # (None, 7, 7, 16)
    """
    output_shape, filters = _check_builder_args(output_shape, embedding_dim, filters)
    height, width, channels = output_shape
    grid_h, grid_w = code_grid_shape(output_shape, len(filters))
    quantized = keras.Input(shape=(grid_h, grid_w, embedding_dim), name="quantized")
    x = layers.Conv2D(filters[0], 3, padding="same", activation="relu", name="conv_in")(quantized)
    for i, f in enumerate(filters):
        x = layers.Conv2DTranspose(
            f, 3, strides=2, padding="same", activation="relu", name=f"deconv_{i}"
        )(x)
    x = layers.Conv2DTranspose(channels, 3, padding="same", name="deconv_out")(x)
    scale = 2 ** len(filters)
    extra_h, extra_w = grid_h * scale - height, grid_w * scale - width
    if extra_h or extra_w:
        crop = ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2))
        x = layers.Cropping2D(crop, name="crop")(x)
    outputs = layers.Identity(name="decoded")(x)
    return keras.Model(quantized, outputs, name="vq_decoder")


def registry_networks(arch, input_shape, filters, *, embedding_dim, **options):
    return (build_vq_encoder(input_shape, embedding_dim, filters),
            build_vq_decoder(input_shape, embedding_dim, tuple(reversed(filters))))
