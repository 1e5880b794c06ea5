"""`load_data("dsprites")` and the `limit` keyword (every source)."""

import numpy as np
import pytest
from PIL import Image

from vae_tf.data import load_data
from vae_tf.data.dsprites import FACTOR_NAMES, DSprites


def _all(dataset):
    pairs = list(dataset.as_numpy_iterator())
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def test_dsprites_splits_carry_factor_labels_and_render_their_images():
    splits = load_data("dsprites", batch_size=100, limit=500, validation_fraction=0.2, seed=3)
    assert splits.image_shape == (64, 64, 1) and splits.num_classes is None
    assert splits.factor_names == FACTOR_NAMES
    images, factors = _all(splits.train)
    assert images.shape == (500, 64, 64, 1) and factors.shape == (500, 5) and factors.dtype == np.int32
    assert np.array_equal(images, DSprites().images(factors))
    validation = _all(splits.validation)[1]
    test = _all(splits.test)[1]
    assert len(validation) == 100 and len(test) == 10_000
    index = DSprites().index
    train_ids, validation_ids, test_ids = (set(index(f.astype("int64"))) for f in (factors, validation, test))
    assert not (train_ids & validation_ids) and not (train_ids & test_ids) and not (validation_ids & test_ids)


def test_dsprites_limit_is_seeded_and_the_test_split_is_fixed():
    a = load_data("dsprites", batch_size=200, limit=200, seed=0)
    b = load_data("dsprites", batch_size=200, limit=200, seed=0)
    c = load_data("dsprites", batch_size=200, limit=200, seed=1)
    first = lambda s: set(map(tuple, _all(s.epoch(0))[1]))  # noqa: E731
    assert first(a) == first(b) != first(c)
    assert np.array_equal(next(iter(a.test))[1], next(iter(c.test))[1])


def test_limit_takes_a_seeded_subset_of_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    kwargs = dict(data_dir=tmp_path, image_size=(6, 6), batch_size=8, validation_fraction=0.0)
    full = _all(load_data("folder", **kwargs).train)[0]
    limited_splits = load_data("folder", limit=7, seed=2, **kwargs)
    assert int(limited_splits.train.cardinality()) == 1  # known: Keras counts the epoch's steps
    limited = _all(limited_splits.train)[0]
    again = _all(load_data("folder", limit=7, seed=2, **kwargs).train)[0]
    assert len(full) == 32 and len(limited) == 7
    assert {x.tobytes() for x in limited} == {x.tobytes() for x in again}
    assert {x.tobytes() for x in limited} <= {x.tobytes() for x in full}


@pytest.mark.parametrize("limit, message", [(0, "limit must be an integer >= 1"), (2.5, "limit must be"),
                                            (33, "limit 33 is more than the 32 training examples")])
def test_bad_limits_are_refused(tmp_path, limit, message):
    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(tmp_path / "a" / f"{i}.png")
    with pytest.raises(ValueError, match=message):
        load_data("folder", data_dir=tmp_path, image_size=(4, 4), validation_fraction=0.0, limit=limit)


def test_dsprites_limit_beyond_the_grid_is_refused():
    with pytest.raises(ValueError, match="dSprites has 727280 images outside its test split"):
        load_data("dsprites", limit=727_000, validation_fraction=0.1)
