"""dSprites generated on the fly (`vae_tf.data.dsprites`): 64x64x1 binary images whose
labels are int32 factor-index vectors (shape, scale, orientation, pos_x, pos_y)."""

import numpy as np

from vae_tf.data.dsprites import DSprites
from vae_tf.data.sources.registry import CARVE_SEED, RawSplits, Source, register

_TEST_IMAGES = 10_000


def _read(request):
    """A fixed random 10,000-image test split; validation and train drawn from the rest
    with `seed` (`limit` training and round(fraction * limit) validation images when
    `limit` is given). Splits stream in random order."""
    limit, fraction = request.limit, request.validation_fraction
    sprites = DSprites()
    order = np.random.default_rng(CARVE_SEED).permutation(sprites.num_images)
    test, pool = order[:_TEST_IMAGES], np.random.default_rng(request.seed).permutation(order[_TEST_IMAGES:])
    size = len(pool) if limit is None else limit
    held = int(round(size * fraction))
    if held + size > len(pool):
        raise ValueError(
            f"limit {limit} with validation_fraction {fraction} needs {held + size} images; "
            f"dSprites has {len(pool)} images outside its test split"
        )
    train = pool[held:] if limit is None else pool[held : held + limit]
    return RawSplits(
        sprites.dataset(train),
        sprites.dataset(pool[:held]) if held else None,
        sprites.dataset(test),
        sprites.image_shape,
        None,
        f"generated dSprites ({len(train)} train images; labels are factor indices)",
        factor_names=sprites.factor_names,
    )


SOURCE = register(Source(
    name="dsprites", help="generated, labels are its 5 factor indices", read=_read,
    streamed=True, subsets=True, sampler=DSprites,
))
