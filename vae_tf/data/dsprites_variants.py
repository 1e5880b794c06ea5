"""Colour, noisy and scream dSprites: the dSprites sprites on 64x64x3 RGB images.

The variants of Locatello et al. (2019), "Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations" (ICML, section 5 and appendix),
as disentanglement_lib's `dsprites.py` defines them. The factors are dSprites' five
(shape, scale, orientation, pos_x, pos_y) with the same indices and labels; what the
variant adds (colour, noise, background) is a nuisance, NOT a factor:

- `ColorDSprites` ("dsprites_color"): the sprite in one RGB colour per image, each
  channel uniform in [0.5, 1), on black.
- `NoisyDSprites` ("dsprites_noisy"): the sprite white on a background of uniform noise
  in [0, 1), drawn per pixel and channel.
- `ScreamDSprites` ("dsprites_scream"): a 64x64 crop of a textured colour image, shifted
  by a random colour c (background = (crop + c) / 2, c uniform in [0, 1)^3), with the
  sprite's pixels inverted (1 - background). disentanglement_lib crops Munch's painting
  "The Scream", which we cannot ship; this texture is PROCEDURAL instead: fractal colour
  noise (smooth random colours at 6 octaves) generated from `seed`. Numbers measured on
  scream-dSprites here do not compare with the paper's beyond their ordering.

Unlike disentanglement_lib, which draws the nuisance afresh for every observation, the
nuisance of image `index` is a fixed function of (`seed`, `index`) (TensorFlow's stateless
random ops), so a variant is a fixed set of 737,280 images as dSprites is: the data
pipeline and `images` give the same picture for the same factors, every test split is
the same, and a resumed run sees the same images. A sprite pixel is where the plain
dSprites image is 1, so `mask * foreground + (1 - mask) * background` with `layers`.

Example:

>>> sprites = NoisyDSprites()
>>> images, factors = sprites.sample(16, np.random.default_rng(0))
>>> images.shape, factors.shape
((16, 64, 64, 3), (16, 5))
"""

import functools

import numpy as np
import tensorflow as tf

from vae_tf.data.dsprites import DSprites

RGB_SHAPE = (64, 64, 3)
# The procedural texture: its side, and the grid size of its coarsest octave.
TEXTURE_SIZE = 256
_OCTAVES = 6
_COARSEST = 4


def fractal_texture(seed, size=TEXTURE_SIZE):
    """A smooth random RGB texture in [0, 1]: fractal value noise (`_OCTAVES` octaves).

    Octave k is a (4 * 2^k + 1)^2 grid of uniform random colours, bilinearly interpolated
    to `size` x `size` and weighted 2^-k; each channel of the sum is stretched to [0, 1].

    Args:
        seed: int. Seeds the random grids.
        size: int. Side in pixels. Defaults to 256.

    Returns:
        float32 array (size, size, 3).
    """
    rng = np.random.default_rng(seed)
    texture = np.zeros((size, size, 3))
    for octave in range(_OCTAVES):
        cells = _COARSEST * 2**octave
        grid = rng.uniform(size=(cells + 1, cells + 1, 3))
        at = np.linspace(0, cells, size)
        low = np.minimum(at.astype(int), cells - 1)
        w = (at - low)[:, None, None]
        rows = grid[low] * (1 - w) + grid[low + 1] * w  # (size, cells + 1, 3)
        wc = (at - low)[None, :, None]
        texture += (rows[:, low] * (1 - wc) + rows[:, low + 1] * wc) * 0.5**octave
    low, high = texture.min(axis=(0, 1)), texture.max(axis=(0, 1))
    return ((texture - low) / (high - low)).astype("float32")


class _Variant(DSprites):
    """dSprites' factors and sprites, painted into RGB by `layers` (see the module)."""

    image_shape = RGB_SHAPE

    def __init__(self, seed=0):
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)

    def _uniform(self, index, shape):
        """Uniform [0, 1) draws that depend on (seed, index) alone."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(index, tf.int64)])
        return tf.random.stateless_uniform(shape, seed=seed)

    def layers(self, index):
        """(background, foreground): float32 (64, 64, 3) tensors of image `index` (an int
        or scalar int tensor); the sprite's pixels show the foreground."""
        raise NotImplementedError

    def _paint(self, mask, index):
        background, foreground = self.layers(index)
        return mask * foreground + (1.0 - mask) * background

    @functools.cached_property
    def _paint_batch(self):
        """`_paint` on a batch (masks (n, 64, 64, 1), indices (n,)), traced once."""
        signature = [tf.TensorSpec((None, 64, 64, 1), tf.float32), tf.TensorSpec((None,), tf.int64)]

        @tf.function(input_signature=signature)
        def paint(masks, indices):
            return tf.map_fn(lambda pair: self._paint(*pair), (masks, indices),
                             fn_output_signature=tf.TensorSpec(RGB_SHAPE, tf.float32))

        return paint

    def images(self, factors):
        """Renders factor-index vectors (n, 5) as (n, 64, 64, 3) float32 images in [0, 1]."""
        return self._paint_batch(super().images(factors), self.index(factors)).numpy()

    def dataset(self, indices):
        """A tf.data pipeline of (image, factors) for image `indices`, rendered lazily.

        Args:
            indices: 1-D integer array of image indices, in the order to yield them.

        Returns:
            A `tf.data.Dataset` of (float32 (64, 64, 3) image in [0, 1], int32 (5,)
            factor indices), the images `images` gives for the same factors.
        """
        sprites = super().dataset(indices)
        order = tf.data.Dataset.from_tensor_slices(np.asarray(indices, "int64"))
        return tf.data.Dataset.zip(sprites, order).map(
            lambda pair, index: (self._paint(pair[0], index), pair[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        )


class ColorDSprites(_Variant):
    """color-dSprites: the sprite in a random colour, each channel uniform in [0.5, 1),
    on black (disentanglement_lib's `ColorDSprites`; the colour is not a factor).

    Args:
        seed: int. Seeds every image's colour. Defaults to 0.
    """

    def layers(self, index):
        colour = 0.5 + 0.5 * self._uniform(index, (3,))
        return tf.zeros(RGB_SHAPE), tf.broadcast_to(colour, RGB_SHAPE)


class NoisyDSprites(_Variant):
    """noisy-dSprites: the sprite white on uniform noise in [0, 1) per pixel and channel
    (disentanglement_lib's `NoisyDSprites`; the noise is not a factor).

    Args:
        seed: int. Seeds every image's noise. Defaults to 0.
    """

    def layers(self, index):
        return self._uniform(index, RGB_SHAPE), tf.ones(RGB_SHAPE)


class ScreamDSprites(_Variant):
    """scream-dSprites with a PROCEDURAL texture in place of "The Scream": the background
    is (a random 64x64 crop of `fractal_texture(seed)` + a random colour) / 2 and the
    sprite inverts it (disentanglement_lib's `ScreamDSprites` otherwise).

    Args:
        seed: int. Seeds the texture and every image's crop and colour. Defaults to 0.
    """

    @functools.cached_property
    def texture(self):
        """The (256, 256, 3) float32 texture the backgrounds are cropped from."""
        return fractal_texture(self.seed)

    @functools.cached_property
    def _texture_tensor(self):
        with tf.init_scope():  # eager, though first asked for while tracing
            return tf.constant(self.texture)

    def layers(self, index):
        draws = self._uniform(index, (5,))
        corner = tf.cast(draws[:2] * (TEXTURE_SIZE - RGB_SHAPE[0] + 1), tf.int32)
        crop = tf.slice(self._texture_tensor, [corner[0], corner[1], 0], RGB_SHAPE)
        background = (crop + draws[2:]) / 2.0
        return background, 1.0 - background


# The `--dataset` name of each variant.
VARIANTS = {"dsprites_color": ColorDSprites, "dsprites_noisy": NoisyDSprites, "dsprites_scream": ScreamDSprites}
