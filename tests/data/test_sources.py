"""The data-source registry: what each source needs, checked once for `load_data` and the
config alike, and a new source served by registering it."""

import numpy as np
import pytest
import tensorflow as tf

from vae_tf.config import ConfigError, DataConfig, RunConfig
from vae_tf.data import load_data, sources
from vae_tf.data.sources import registry


def test_the_built_in_sources_are_registered_and_described():
    assert sources.names() == ("idx", "folder", "dsprites", "dsprites_color", "dsprites_noisy", "dsprites_scream", "tabular")
    described = sources.describe()
    for name in sources.names():
        assert repr(name) in described
    assert "tensorflow-datasets" in described  # any other name
    assert sources.find("tabular").name == "tabular"
    assert sources.find("mnist").name is None  # tensorflow-datasets serves the rest


def test_a_name_with_idx_files_is_read_as_idx_files(small_dir):
    assert sources.find("mnist", small_dir).name == "idx"
    assert sources.find("mnist", small_dir / "missing").name is None


@pytest.mark.parametrize("request_, message", [
    (dict(dataset="idx"), "--dataset idx needs --data-dir, a directory of IDX files"),
    (dict(dataset="folder", data_dir="d"), "--dataset folder needs --image-size H W"),
    (dict(dataset="tabular"), "--dataset tabular needs --data-dir, a .csv, .npy or .npz file"),
    (dict(dataset="tabular", data_dir="t.csv", binarize="static"), "--binarize applies to images"),
    (dict(dataset="tabular", data_dir="t.csv", image_size=(8, 8)), "--image-size applies to images"),
    (dict(dataset="idx", data_dir="d", label_column="y"), "--label-column applies only to --dataset tabular, not 'idx'"),
    (dict(dataset="mnist", columns="a,b"), "--columns applies only to --dataset tabular, not 'mnist'"),
])
def test_a_request_its_source_cannot_serve_is_refused_naming_the_option(request_, message):
    with pytest.raises(ValueError, match=message):
        sources.check(**request_)


def test_load_data_and_the_config_refuse_with_the_same_message():
    message = "--dataset tabular needs --data-dir"
    with pytest.raises(ValueError, match=message):
        load_data("tabular")
    with pytest.raises(ConfigError, match=message):
        RunConfig(data=DataConfig(dataset="tabular"))


@pytest.fixture
def ramp_source(monkeypatch):
    """A source "ramp" registered for one test: 10 images whose pixels are their index / 10."""
    monkeypatch.setattr(registry, "_NAMED", dict(registry._NAMED))
    monkeypatch.setattr(registry, "_SERVING", list(registry._SERVING))

    def read(request):
        images = np.arange(10, dtype="float32")[:, None, None, None] * np.ones((1, 2, 2, 1), "float32") / 10
        labels = np.arange(10, dtype="int32") % 2
        pair = lambda idx: tf.data.Dataset.from_tensor_slices((images[idx], labels[idx]))  # noqa: E731
        return registry.RawSplits(pair(slice(0, 8)), None, pair(slice(8, 10)), (2, 2, 1), 2, "a ramp")

    return sources.register(sources.Source(name="ramp", help="a ramp of 10 images", read=read))


def test_a_registered_source_is_loaded_described_and_accepted_by_the_config(ramp_source):
    data = load_data("ramp", batch_size=4, validation_fraction=0.0, seed=1)
    assert (data.image_shape, data.num_classes, data.source, data.cached) == ((2, 2, 1), 2, "a ramp", ("train", "test"))
    train = np.concatenate([x.numpy() for x, _ in data.train])
    assert sorted(train[:, 0, 0, 0].round(1)) == pytest.approx([i / 10 for i in range(8)])
    assert [x.shape[0] for x, _ in data.test] == [2]
    assert data.indexed_epoch is not None  # held in memory, of known size
    assert "'ramp' (a ramp of 10 images)" in sources.describe()
    RunConfig(data=DataConfig(dataset="ramp"))
    with pytest.raises(ConfigError, match="--label-column applies only to --dataset tabular, not 'ramp'"):
        RunConfig(data=DataConfig(dataset="ramp", label_column="y"))
