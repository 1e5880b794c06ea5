import numpy as np
import pytest

from vae_tf.data.dsprites import FACTOR_SIZES, DSprites, factor_values


@pytest.fixture(scope="module")
def sprites():
    return DSprites()


def _crop(mask):
    rows, cols = np.nonzero(mask)
    return mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].tobytes()


def test_grid_matches_the_published_factor_sizes(sprites):
    values = factor_values()
    assert [len(values[name]) for name in sprites.factor_names] == [3, 6, 40, 32, 32]
    assert sprites.num_images == 3 * 6 * 40 * 32 * 32 == 737_280
    assert values["orientation"][-1] == pytest.approx(2 * np.pi)
    assert values["scale"][[0, -1]].tolist() == [0.5, 1.0]
    indices = np.arange(sprites.num_images)
    assert np.array_equal(sprites.index(sprites.factors(indices)), indices)


def test_images_are_binary_64x64_and_deterministic(sprites):
    images, factors = sprites.sample(50, np.random.default_rng(3))
    assert images.shape == (50, 64, 64, 1) and images.dtype == np.float32
    assert set(np.unique(images)) == {0.0, 1.0}
    again, factors_again = DSprites().sample(50, np.random.default_rng(3))
    assert np.array_equal(images, again) and np.array_equal(factors, factors_again)


def test_tf_pipeline_renders_the_same_images_as_numpy(sprites):
    indices = np.random.default_rng(1).choice(sprites.num_images, 300, replace=False)
    pairs = list(sprites.dataset(indices).batch(100).as_numpy_iterator())
    images = np.concatenate([p[0] for p in pairs])
    factors = np.concatenate([p[1] for p in pairs])
    assert np.array_equal(factors, sprites.factors(indices))
    assert np.array_equal(images, sprites.images(factors))


def test_moving_the_position_moves_the_picture_by_whole_pixels(sprites):
    base = sprites.images(np.array([[2, 5, 7, 0, 0]]))[0, ..., 0]
    moved = sprites.images(np.array([[2, 5, 7, 3, 10]]))[0, ..., 0]
    assert np.array_equal(np.roll(base, (10, 3), axis=(0, 1)), moved)


def test_no_shape_touches_the_patch_border_so_positions_never_clip(sprites):
    masks = sprites.masks
    assert masks[:, 0].sum() == masks[:, -1].sum() == masks[:, :, 0].sum() == masks[:, :, -1].sum() == 0
    assert masks.sum(axis=(1, 2)).min() > 0


def test_only_the_documented_images_coincide_on_the_whole_grid(sprites):
    """An image is a mask shifted by its position, so two factor vectors give the same
    image exactly when their masks are translates of each other and the shifts match.
    Checking the 720 masks up to translation therefore covers all 737,280 images."""
    angles = factor_values()["orientation"]
    period = {0: np.pi / 2, 1: np.pi, 2: 2 * np.pi}  # square, ellipse, heart symmetries
    limit = {0: np.radians(14.0), 1: np.radians(4.7), 2: 0.0}
    groups = {}
    for i, mask in enumerate(sprites.masks):
        groups.setdefault(_crop(mask), []).append(np.unravel_index(i, FACTOR_SIZES[:3]))
    for group in groups.values():
        # Same picture up to translation -> same mask: positions can never make two images equal.
        assert len({sprites.masks[np.ravel_multi_index(g, FACTOR_SIZES[:3])].tobytes() for g in group}) == 1
        for shape, scale, orientation in group:
            assert (shape, scale) == tuple(group[0][:2])
            gap = (angles[orientation] - angles[group[0][2]]) % period[shape]
            assert min(gap, period[shape] - gap) <= limit[shape] + 1e-9
    distinct = lambda shape, scale: len({  # noqa: E731
        sprites.masks[np.ravel_multi_index((shape, scale, o), FACTOR_SIZES[:3])].tobytes() for o in range(40)
    })
    assert [[distinct(shape, scale) for scale in range(6)] for shape in range(3)] == [
        [13, 19, 24, 33, 33, 35], [33, 33, 39, 39, 39, 39], [39] * 6
    ]
    # Orientation 0 and 2 pi are the same picture for every shape and scale.
    for shape in range(3):
        for scale in range(6):
            first, last = (np.ravel_multi_index((shape, scale, o), FACTOR_SIZES[:3]) for o in (0, 39))
            assert np.array_equal(sprites.masks[first], sprites.masks[last])


def test_sampled_images_are_distinct_apart_from_the_documented_cases(sprites):
    factors = sprites.sample_factors(20_000, np.random.default_rng(0))
    factors = np.unique(factors, axis=0)
    seen = {}
    for f, image in zip(factors, sprites.images(factors)):
        seen.setdefault(image.tobytes(), []).append(f)
    for group in seen.values():
        for f in group[1:]:
            assert np.array_equal(np.delete(f, 2), np.delete(group[0], 2))  # only orientation differs
            assert group[0][0] != 2 or {f[2], group[0][2]} == {0, 39}  # heart: only 0 and 2 pi


def test_sample_fixed_shares_one_value_of_the_fixed_factor(sprites):
    rng = np.random.default_rng(0)
    for factor in range(5):
        images, factors = sprites.sample_fixed(64, factor, rng)
        assert images.shape == (64, 64, 64, 1)
        assert len(np.unique(factors[:, factor])) == 1
        assert np.array_equal(images, sprites.images(factors))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.images(np.zeros((2, 4), "int64")), "shaped"),
        (lambda s: s.images(np.array([[0, 0, 40, 0, 0]])), "orientation"),
        (lambda s: s.images(np.zeros((2, 5), "float32")), "integer"),
        (lambda s: s.factors(np.array([737_280])), "indices"),
        (lambda s: s.sample_fixed(4, 5, np.random.default_rng(0)), "factor"),
        (lambda s: s.sample(0, np.random.default_rng(0)), "num"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(sprites, call, message):
    with pytest.raises(ValueError, match=message):
        call(sprites)
