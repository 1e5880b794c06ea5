"""color-, noisy- and scream-dSprites: RGB images of dSprites' sprites, the same factors."""

import numpy as np
import pytest

from vae_tf.data import load_data, sources
from vae_tf.data.dsprites import DSprites
from vae_tf.data.dsprites_variants import VARIANTS, ColorDSprites, NoisyDSprites, ScreamDSprites, fractal_texture


@pytest.fixture(scope="module")
def factors():
    return DSprites().sample_factors(40, np.random.default_rng(5))


@pytest.fixture(scope="module")
def masks(factors):
    return DSprites().images(factors)  # (n, 64, 64, 1) in {0, 1}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request):
    return request.param, VARIANTS[request.param]()


def test_images_are_rgb_in_the_unit_interval_and_deterministic(variant, factors):
    name, sprites = variant
    images = sprites.images(factors)
    assert images.shape == (40, 64, 64, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert np.array_equal(images, VARIANTS[name]().images(factors))  # a new object: the same images
    other_seed = VARIANTS[name](seed=1).images(factors)
    assert not np.array_equal(images, other_seed)


def test_the_sprite_is_the_plain_dsprites_sprite_over_the_layers(variant, factors, masks):
    """image = mask * foreground + (1 - mask) * background, with dSprites' own mask, and
    the sprite is visible: foreground and background differ at every pixel."""
    _, sprites = variant
    images = sprites.images(factors)
    for image, mask, index in zip(images, masks, sprites.index(factors)):
        background, foreground = (t.numpy() for t in sprites.layers(index))
        assert np.array_equal(image, mask * foreground + (1 - mask) * background)
        assert np.abs(foreground - background).min() > 0


def test_each_variant_paints_as_disentanglement_lib_defines_it(factors, masks):
    on = masks[..., 0] == 1
    color = ColorDSprites().images(factors)
    assert np.all(color[~on] == 0)  # black background
    colours = color[on].reshape(-1, 3)
    assert colours.min() >= 0.5 and colours.max() < 1
    first = color[0][on[0]]
    assert np.all(first == first[0])  # one colour per image
    assert len({tuple(c[m][0]) for c, m in zip(color, on)}) == len(factors)  # a new one for each

    noisy = NoisyDSprites().images(factors)
    assert np.all(noisy[on] == 1)  # a white sprite
    noise = noisy[~on]
    assert noise.max() < 1 and abs(noise.mean() - 0.5) < 0.01 and abs(noise.std() - (1 / 12) ** 0.5) < 0.01
    assert np.array_equal(noisy.min(axis=-1) == 1, on)  # the sprite is exactly the white pixels

    scream = ScreamDSprites()
    images = scream.images(factors)
    for image, mask, index in zip(images[:5], on, scream.index(factors)):
        background = scream.layers(index)[0].numpy()
        assert np.allclose(image[mask], 1 - background[mask]) and np.array_equal(image[~mask], background[~mask])
        r, c, colour = _crop_and_colour(2 * background, scream.texture)
        assert np.allclose(2 * background, scream.texture[r:r + 64, c:c + 64] + colour, atol=1e-6)
        assert np.all((colour >= 0) & (colour < 1))


def _crop_and_colour(doubled, texture):
    """The crop corner (r, c) and colour with doubled = texture[r:r+64, c:c+64] + colour:
    the corners where two pixels give the same colour, checked on the whole crop."""
    side = texture.shape[0] - 64 + 1
    colour_at = doubled[0, 0] - texture[:side, :side]  # (side, side, 3): the colour each corner implies
    agrees = np.all(np.abs(doubled[37, 11] - texture[37:37 + side, 11:11 + side] - colour_at) < 1e-5, axis=-1)
    matches = [(r, c) for r, c in np.argwhere(agrees)
               if np.allclose(doubled - texture[r:r + 64, c:c + 64], colour_at[r, c], atol=1e-5)]
    assert len(matches) == 1, matches
    r, c = matches[0]
    return r, c, colour_at[r, c]


def test_the_procedural_texture_is_smooth_coloured_and_seeded():
    texture = fractal_texture(0)
    assert texture.shape == (256, 256, 3) and texture.min() == 0 and texture.max() == 1
    assert np.array_equal(texture, fractal_texture(0)) and not np.array_equal(texture, fractal_texture(1))
    step = np.abs(np.diff(texture, axis=0)).mean()
    shuffled = np.random.default_rng(0).permutation(texture.reshape(-1, 3)).reshape(texture.shape)
    assert step < np.abs(np.diff(shuffled, axis=0)).mean() / 4  # neighbours alike: a texture, not noise
    assert np.corrcoef(texture.reshape(-1, 3).T)[0, 1] < 0.9  # the channels differ: colours, not grey


def test_the_pipeline_renders_the_numpy_images_with_the_plain_factor_labels(variant):
    name, sprites = variant
    indices = np.random.default_rng(2).choice(sprites.num_images, 50, replace=False)
    pairs = list(sprites.dataset(indices).batch(25).as_numpy_iterator())
    images, labels = (np.concatenate([p[i] for p in pairs]) for i in (0, 1))
    assert np.array_equal(labels, DSprites().factors(indices))
    assert np.array_equal(images, sprites.images(labels))


def test_load_data_serves_each_variant_with_dsprites_splits_and_labels(variant):
    name, _ = variant
    plain = load_data("dsprites", batch_size=30, limit=60, validation_fraction=0.5, seed=4)
    data = load_data(name, batch_size=30, limit=60, validation_fraction=0.5, seed=4)
    assert data.image_shape == (64, 64, 3) and data.factor_names == plain.factor_names
    for split in ("train", "validation"):
        labels = [np.concatenate([y for _, y in getattr(d, split).as_numpy_iterator()]) for d in (plain, data)]
        assert np.array_equal(*labels)
    x, y = next(iter(data.test))
    assert np.array_equal(x.numpy(), VARIANTS[name]().images(y.numpy()))
    assert sources.factor_sampler(name).image_shape == (64, 64, 3)


def test_factor_sampler_refuses_a_data_set_without_factors():
    assert isinstance(sources.factor_sampler("dsprites"), DSprites)
    with pytest.raises(ValueError, match="--dataset fashion_mnist has no known ground-truth factors"):
        sources.factor_sampler("fashion_mnist")


def test_a_bad_seed_is_refused():
    with pytest.raises(ValueError, match="seed must be an integer, got 0.5"):
        NoisyDSprites(seed=0.5)


def test_the_disentanglement_metrics_take_a_variant_as_their_factor_sampler(variant):
    from vae_tf.analysis.disentanglement import all_scores
    from vae_tf.runs.disentanglement import QUICK_SAMPLES

    _, sprites = variant

    def centre_of_mass(images):  # codes that follow pos_x and pos_y: the sprite's centre
        weights = np.abs(images - np.median(images, axis=(1, 2), keepdims=True)).sum(axis=-1)
        grid = np.arange(64)
        total = weights.sum(axis=(1, 2))
        return np.stack([(weights.sum(axis=1) * grid).sum(1) / total, (weights.sum(axis=2) * grid).sum(1) / total], 1)

    scores = all_scores(centre_of_mass, sprites, seed=0, samples=QUICK_SAMPLES)
    assert 0 < scores["mig"] <= 1 and 0 < scores["dci"]["disentanglement"] <= 1
    # Two dimensions can name at most 2 of the 5 factors: a vote is right for pos_x, pos_y.
    assert 0 < scores["factor_vae"]["eval_accuracy"] <= 0.4 + 0.2
