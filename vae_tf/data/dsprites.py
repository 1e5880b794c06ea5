"""dSprites generated procedurally: 2-D shapes with exactly known generating factors.

The factor grid is the published one (Matthey et al. 2017, "dSprites: Disentanglement
testing Sprites dataset"): shape (square, ellipse, heart), scale (6 values, 0.5 to 1),
orientation (40 values, 0 to 2 pi), position x and y (32 values each, 0 to 1) -
737,280 binary 64x64 images. The pictures are drawn by our own code (no download), so
they resemble but are not pixel-equal to the published ones.

Image `index` has factor indices `np.unravel_index(index, FACTOR_SIZES)` (the
published ordering without its constant colour factor). Images are rendered on demand
from 3 x 6 x 40 shape masks computed once per `DSprites` object: a mask is a 32x32
patch rasterized with 4x4 supersampling (a pixel is on when at least half of it is
covered), and position (i, j) places the patch at rows i..i+31, columns j..j+31 of the
64x64 canvas, so shapes move by whole pixels and never touch the border.

Images that coincide (`tests/test_dsprites.py` checks these statements on the whole grid):
- orientation runs over `linspace(0, 2 pi, 40)`, as published, so orientation index 0
  (angle 0) and 39 (angle 2 pi) draw the same picture for every shape, scale, position;
- the square looks the same after a 90-degree turn and the ellipse after 180 degrees;
  2 pi / 39 steps never land exactly on those angles, but they come within 2.3 degrees
  (square) and 4.6 degrees (ellipse) of them, which 64x64 pixels cannot always resolve
  for small shapes. Distinct orientation pictures per scale (0.5 ... 1): square 13, 19,
  24, 33, 33, 35; ellipse 33, 33, 39, 39, 39, 39; heart 39 at every scale. The
  published images have the same symmetries at the same resolution.
- nothing else: different shapes, scales or positions never give the same image.
"""

import functools

import numpy as np
import tensorflow as tf

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
IMAGE_SHAPE = (64, 64, 1)
_PATCH = 32
_SUPERSAMPLE = 4
# Half-extents in pixels at scale 1; the largest rotated shape stays inside the patch.
_SQUARE_HALF_SIDE = 7.0
_ELLIPSE_AXES = (10.0, 5.0)
_HEART_SIZE = 8.0


def factor_values():
    """The physical value of every factor index, as in the published set.

    Returns:
        A dict from factor name to a numpy array: shape 0, 1, 2 (square, ellipse,
        heart); scale `linspace(0.5, 1, 6)`; orientation `linspace(0, 2 pi, 40)`
        radians; pos_x and pos_y `linspace(0, 1, 32)`.
    """
    return {
        "shape": np.arange(3),
        "scale": np.linspace(0.5, 1.0, 6),
        "orientation": np.linspace(0.0, 2 * np.pi, 40),
        "pos_x": np.linspace(0.0, 1.0, 32),
        "pos_y": np.linspace(0.0, 1.0, 32),
    }


def _inside(shape, u, v):
    """Point-in-shape test for shape coordinates (u right, v up), unit scale in pixels."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF_SIDE
    if shape == "ellipse":
        a, b = _ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    # The implicit heart (x^2 + y^2 - 1)^3 <= x^2 y^3, centred on its bounding box.
    x, y = u / _HEART_SIZE, v / _HEART_SIZE + 0.125
    return (x * x + y * y - 1.0) ** 3 <= x * x * y**3


def _render_mask(shape, scale, angle):
    """One 32x32 binary patch of a shape centred on the patch, rotated counter-clockwise."""
    steps = (np.arange(_PATCH * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - _PATCH / 2
    cols, rows = np.meshgrid(steps, steps)
    x, y = cols / scale, -rows / scale  # y up
    cos, sin = np.cos(angle), np.sin(angle)
    inside = _inside(shape, cos * x + sin * y, -sin * x + cos * y)
    coverage = inside.reshape(_PATCH, _SUPERSAMPLE, _PATCH, _SUPERSAMPLE).mean(axis=(1, 3))
    return coverage >= 0.5


def _check_factors(factors):
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES):
        raise ValueError(
            f"factors must be shaped (examples, {len(FACTOR_SIZES)}) for {FACTOR_NAMES}, "
            f"got shape {factors.shape}"
        )
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors must be integer indices, got dtype {factors.dtype}")
    bad = (factors < 0) | (factors >= np.array(FACTOR_SIZES))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(
            f"factor {FACTOR_NAMES[column]!r} must be in [0, {FACTOR_SIZES[column]}), got "
            f"{factors[row, column]} (example {row})"
        )
    return factors.astype("int64")


class DSprites:
    """The dSprites factor grid with images rendered on demand.

    It is also the sampler `vae_tf.analysis.disentanglement.factor_vae_score` needs: `sample`
    draws uniform factors and `sample_fixed` draws a batch sharing one factor's value.

    Example:

    >>> sprites = DSprites()
    >>> images, factors = sprites.sample(16, np.random.default_rng(0))
    >>> images.shape, factors.shape
    ((16, 64, 64, 1), (16, 5))
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    num_factors = len(FACTOR_SIZES)
    num_images = int(np.prod(FACTOR_SIZES))
    image_shape = IMAGE_SHAPE

    @functools.cached_property
    def masks(self):
        """(3 * 6 * 40, 32, 32) uint8 patches, indexed by (shape, scale, orientation)."""
        values = factor_values()
        return np.stack([
            _render_mask(shape, scale, angle)
            for shape in SHAPES
            for scale in values["scale"]
            for angle in values["orientation"]
        ]).astype("uint8")

    def factors(self, indices):
        """Factor-index vectors (n, 5) int64 of image indices in [0, 737280)."""
        indices = np.asarray(indices)
        if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"indices must be a 1-D integer array, got {indices.dtype} {indices.shape}")
        if len(indices) and (indices.min() < 0 or indices.max() >= self.num_images):
            raise ValueError(f"indices must be in [0, {self.num_images}), got {indices.min()}..{indices.max()}")
        return np.stack(np.unravel_index(indices, FACTOR_SIZES), axis=1).astype("int64")

    def index(self, factors):
        """Image indices (n,) int64 of factor-index vectors (n, 5)."""
        return np.ravel_multi_index(tuple(_check_factors(factors).T), FACTOR_SIZES).astype("int64")

    def images(self, factors):
        """Renders factor-index vectors (n, 5) as (n, 64, 64, 1) float32 images in {0, 1}."""
        factors = _check_factors(factors)
        mask_ids = np.ravel_multi_index(tuple(factors[:, :3].T), FACTOR_SIZES[:3])
        n = len(factors)
        canvas = np.zeros((n, 64, 64), "float32")
        offsets = np.arange(_PATCH)
        rows = factors[:, 4, None, None] + offsets[None, :, None]
        cols = factors[:, 3, None, None] + offsets[None, None, :]
        canvas[np.arange(n)[:, None, None], rows, cols] = self.masks[mask_ids]
        return canvas[..., None]

    def sample(self, num, rng):
        """Draws `num` images with uniformly random factors.

        Args:
            num: int. Number of images, >= 1.
            rng: numpy.random.Generator.

        Returns:
            (images (num, 64, 64, 1) float32, factors (num, 5) int64).
        """
        factors = self.sample_factors(num, rng)
        return self.images(factors), factors

    def sample_factors(self, num, rng):
        """Uniformly random factor-index vectors (num, 5) int64."""
        if not isinstance(num, (int, np.integer)) or num < 1:
            raise ValueError(f"num must be an integer >= 1, got {num}")
        return np.stack([rng.integers(size, size=num) for size in FACTOR_SIZES], axis=1)

    def sample_fixed(self, num, factor, rng):
        """Draws `num` images that share one random value of factor `factor`.

        Args:
            num: int. Number of images, >= 1.
            factor: int. Which factor is fixed, in [0, 5).
            rng: numpy.random.Generator.

        Returns:
            (images (num, 64, 64, 1) float32, factors (num, 5) int64).
        """
        if not 0 <= factor < self.num_factors:
            raise ValueError(f"factor must be in [0, {self.num_factors}), got {factor}")
        factors = self.sample_factors(num, rng)
        factors[:, factor] = rng.integers(FACTOR_SIZES[factor])
        return self.images(factors), factors

    def dataset(self, indices):
        """A tf.data pipeline of (image, factors) for image `indices`, rendered lazily.

        Rendering is a pad of a precomputed mask in TensorFlow, so nothing but the
        3 x 6 x 40 masks is held in memory however many indices there are.

        Args:
            indices: 1-D integer array of image indices, in the order to yield them.

        Returns:
            A `tf.data.Dataset` of (float32 (64, 64, 1) image in {0, 1}, int32 (5,)
            factor indices).
        """
        factors = self.factors(indices).astype("int32")
        masks = tf.constant(self.masks, tf.float32)
        mask_strides = np.array([FACTOR_SIZES[1] * FACTOR_SIZES[2], FACTOR_SIZES[2], 1], "int32")

        def render(f):
            mask = masks[tf.reduce_sum(f[:3] * mask_strides)]
            x, y = f[3], f[4]
            image = tf.pad(mask, [[y, _PATCH - y], [x, _PATCH - x]])
            return tf.reshape(image, IMAGE_SHAPE), f

        return tf.data.Dataset.from_tensor_slices(factors).map(
            render, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
