"""The `cache` budget for streamed sources: used when the decoded images fit, not when they
don't, and the pipeline gives the same batches either way."""

import numpy as np
import pytest
from PIL import Image

from vae_tf.cli import main
from vae_tf.config import ConfigError, DataConfig, RunConfig
from vae_tf.data import cache_plan, load_data

MIB = 2**20


def make_jpegs(root, count=10, size=(20, 16)):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / f"{i:02d}.jpg")
    return root


def batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_cache_plan_takes_splits_in_order_while_they_fit():
    sizes = {"train": 5 * MIB, "validation": 2 * MIB, "test": 2 * MIB}
    assert cache_plan(sizes, 0) == ()
    assert cache_plan(sizes, 5) == ("train",)
    assert cache_plan(sizes, 8) == ("train", "validation")
    assert cache_plan(sizes, 9) == ("train", "validation", "test")
    assert cache_plan({"train": 6 * MIB, "test": 2 * MIB}, 4) == ("test",)
    assert cache_plan({"train": None}, 10**6) == ()  # unknown size: never cached


def test_folder_splits_are_cached_only_within_the_budget(tmp_path):
    root = make_jpegs(tmp_path / "images")
    # 10 images of 256 x 256 x 3 float32 (0.75 MiB each): test 2, validation 2, train 6.
    options = dict(image_size=(256, 256), validation_fraction=0.25, batch_size=4)
    assert load_data("folder", data_dir=root, **options).cached == ()
    assert load_data("folder", data_dir=root, cache=1, **options).cached == ()
    assert load_data("folder", data_dir=root, cache=2, **options).cached == ("validation",)
    assert load_data("folder", data_dir=root, cache=4, **options).cached == ("validation", "test")
    assert load_data("folder", data_dir=root, cache=5, **options).cached == ("train",)
    assert load_data("folder", data_dir=root, cache=6, **options).cached == ("train", "validation")
    assert load_data("folder", data_dir=root, cache=8, **options).cached == ("train", "validation", "test")
    # `limit` makes tf.data's count unknown; the budget uses the limit instead.
    assert load_data("folder", data_dir=root, cache=2, limit=2, **options).cached == ("train",)


def test_a_cached_split_no_longer_reads_its_files(tmp_path):
    root = make_jpegs(tmp_path / "images")
    options = dict(image_size=(8, 8), validation_fraction=0.0, batch_size=4)
    cached = load_data("folder", data_dir=root, cache=1, **options)
    streamed = load_data("folder", data_dir=root, **options)
    assert cached.cached == ("train", "test") and streamed.cached == ()
    first = batches(cached.train)
    batches(streamed.train)
    for path in root.iterdir():
        path.unlink()
    assert sum(len(x) for x, _ in batches(cached.train)) == len(np.concatenate([y for _, y in first]))
    with pytest.raises(Exception, match="No such file|NotFound|not found"):
        batches(streamed.train)


@pytest.mark.parametrize("binarize", ["none", "static", "dynamic"])
def test_cached_and_streamed_pipelines_give_the_same_batches(tmp_path, binarize):
    root = make_jpegs(tmp_path / "images", count=12)
    options = dict(image_size=(10, 8), validation_fraction=0.25, batch_size=4, binarize=binarize, seed=3)
    cached = load_data("folder", data_dir=root, cache=1, **options)
    streamed = load_data("folder", data_dir=root, cache=0, **options)
    assert cached.cached == ("train", "validation", "test") and streamed.cached == ()
    for split in ("train", "validation", "test"):
        for _ in range(2):  # two passes: the second one reads the cache and reshuffles train
            got, want = batches(getattr(cached, split)), batches(getattr(streamed, split))
            assert len(got) == len(want) > 0
            for (x, y), (x_want, y_want) in zip(got, want, strict=True):
                np.testing.assert_array_equal(x, x_want)
                np.testing.assert_array_equal(y, y_want)
    for index in (0, 4):
        for (x, _), (x_want, _) in zip(batches(cached.epoch(index)), batches(streamed.epoch(index)), strict=True):
            np.testing.assert_array_equal(x, x_want)


@pytest.mark.parametrize("value", [-1, 1.5, "64", True])
def test_a_bad_cache_value_is_refused_by_name(value):
    with pytest.raises(ValueError, match=r"cache must be a whole number of MiB >= 0, got"):
        load_data("folder", data_dir="/nonexistent", image_size=(8, 8), cache=value)


def test_a_bad_cache_option_is_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"--cache must be >= 0, got -1"):
        RunConfig(data=DataConfig(cache=-1))
    with pytest.raises(ConfigError, match=r"--cache must be int, got 2.5"):
        RunConfig(data=DataConfig(cache=2.5))
    with pytest.raises(SystemExit):
        main(["train", "--cache", "lots", "--out", str(tmp_path)])
    assert "--cache" in capsys.readouterr().err and not any(tmp_path.iterdir())
