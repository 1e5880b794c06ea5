"""The feature classifier's cache: trained once, reused, and refused with one clear error
(naming the file and the fix) when its files are damaged or tampered with."""

import json
import shutil

import numpy as np
import pytest

from vae_tf.analysis.feature_classifier import ClassifierSpec, weights_sha256
from vae_tf.runs import classifier_cache
from vae_tf.runs.classifier_cache import DamagedCache, cached_classifier, default_cache_dir

SPEC = ClassifierSpec(filters=(2,), feature_units=4, epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def data():
    """Bright and dark 8x8 images: two classes a classifier tells apart at once."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 160).astype("int32")
    images = (rng.uniform(0, 0.5, (160, 8, 8, 1)) + 0.5 * labels[:, None, None, None]).astype("float32")
    return (images[:128], labels[:128]), (images[128:], labels[128:])


def _classifier(data, cache_dir):
    train, test = data
    return cached_classifier(train, test, 2, "bright-dark", SPEC, cache_dir)


def test_the_first_call_trains_and_caches_and_the_second_reuses(data, tmp_path, monkeypatch):
    model, record, path, trained = _classifier(data, tmp_path)
    assert trained and path.is_file() and path.with_suffix(".json").is_file()
    assert record["weights_sha256"] == weights_sha256(model) and 0 <= record["test_accuracy"] <= 1
    assert record["data"]["source"] == "bright-dark" and record["data"]["train_examples"] == 128
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier was trained again")

    monkeypatch.setattr(classifier_cache, "train_classifier", no_training)
    again, again_record, again_path, trained = _classifier(data, tmp_path)
    assert not trained and again_path == path and again_record == record
    np.testing.assert_array_equal(again.predict(data[1][0], verbose=0), model.predict(data[1][0], verbose=0))


def test_other_data_gets_another_classifier(data, tmp_path):
    (images, labels), test = data
    _, _, first, _ = _classifier(data, tmp_path)
    _, _, second, trained = _classifier(((images[::-1], labels[::-1]), test), tmp_path)
    assert trained and second != first


@pytest.fixture(scope="module")
def pristine(data, tmp_path_factory):
    """A cache directory holding the classifier of `data`, trained once for the module."""
    directory = tmp_path_factory.mktemp("pristine")
    _classifier(data, directory)
    return directory


def _damage_json(path, change):
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.with_suffix(".json").write_text("{not json"), "not valid JSON"),
    (lambda p: p.with_suffix(".json").write_text("[1, 2]"), "not a JSON object"),
    (lambda p: _damage_json(p.with_suffix(".json"), lambda r: r.update(format_version=99)), "format_version 99"),
    (lambda p: _damage_json(p.with_suffix(".json"), lambda r: r.pop("test_accuracy")), "fields"),
    (lambda p: _damage_json(p.with_suffix(".json"), lambda r: r.update(test_accuracy="high")), "test_accuracy"),
    (lambda p: _damage_json(p.with_suffix(".json"), lambda r: r.update(weights_sha256="0" * 64)), "do not match"),
    (lambda p: p.write_bytes(b"PK not a keras archive"), "not a loadable .keras file"),
    (lambda p: p.unlink(), "missing"),
])
def test_a_damaged_cache_is_one_error_naming_the_file_and_the_fix(data, pristine, tmp_path, damage, message):
    cache = shutil.copytree(pristine, tmp_path / "cache")
    path = next(cache.glob("*.keras"))
    damage(path)
    with pytest.raises(DamagedCache, match=message) as error:
        _classifier(data, cache)
    text = str(error.value)
    assert text.startswith(f"classifier cache {path.parent}")
    assert f"delete {path.with_suffix('.json')} and {path} to train the classifier again" in text
    assert "\n" not in text


def test_deleting_a_damaged_pair_trains_the_classifier_again(data, pristine, tmp_path):
    cache = shutil.copytree(pristine, tmp_path / "cache")
    path = next(cache.glob("*.keras"))
    path.write_bytes(b"damaged")
    with pytest.raises(DamagedCache):
        _classifier(data, cache)
    path.unlink()
    path.with_suffix(".json").unlink()
    assert _classifier(data, cache)[3]


def test_the_default_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "vae_tf" / "classifiers"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir().parts[-3:] == (".cache", "vae_tf", "classifiers")
