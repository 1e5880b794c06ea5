"""The feature classifier of sample quality, trained once per data set and kept in a cache.

A cache directory holds, per data set and `ClassifierSpec`, two files named by a key
(a hash of the spec, the data set's contents and `FORMAT_VERSION`):

    classifier-KEY.keras  the trained classifier (loaded with Keras' safe_mode on)
    classifier-KEY.json   what it is: format_version, architecture (the spec), data (the
                          data set's identity: source, shapes, counts, sha256 of its
                          examples), test_accuracy, weights_sha256

The default directory is `$XDG_CACHE_HOME/vae_tf/classifiers` (`~/.cache/vae_tf/classifiers`
without XDG_CACHE_HOME): a classifier is the data set's, not a run's, so every run on that
data set reuses it. Both files are written atomically, the `.keras` first, so a JSON
always describes a complete model. A cached pair is untrusted input: the JSON is checked
field by field and the model's weights against its recorded hash; anything wrong is an
error naming the file, and deleting the pair makes the next call train it again.
"""

import hashlib
import json
import logging
import os
import pathlib
import re

from vae_tf.analysis.feature_classifier import (
    FEATURE_LAYER,
    ClassifierSpec,
    arrays_sha256,
    train_classifier,
    weights_sha256,
)
from vae_tf.runtime.files import atomic_write, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # of the JSON record; a new one makes old records refused, not misread
FIELDS = ("format_version", "architecture", "data", "test_accuracy", "weights_sha256")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def default_cache_dir():
    """`$XDG_CACHE_HOME/vae_tf/classifiers`, or `~/.cache/vae_tf/classifiers`."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "vae_tf" / "classifiers"


def data_identity(train, test, num_classes, source):
    """What identifies a labelled data set: its source, shapes, counts and a sha256 of its
    examples and labels, in the order given (JSON-ready)."""
    return {"source": source, "image_shape": [int(s) for s in train[0].shape[1:]],
            "num_classes": int(num_classes), "train_examples": len(train[0]),
            "test_examples": len(test[0]), "sha256": arrays_sha256(*train, *test)}


def cache_paths(cache_dir, spec, identity):
    """(the .keras path, the .json path) of the classifier of `spec` on the data `identity`."""
    description = {"format_version": FORMAT_VERSION, "architecture": spec.as_dict(), "data": identity}
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    directory = pathlib.Path(cache_dir)
    return directory / f"classifier-{key}.keras", directory / f"classifier-{key}.json"


class DamagedCache(ValueError):
    """A cached classifier or its record is not what it should be."""

    def __init__(self, path, problem, pair):
        keras_path, json_path = pair
        super().__init__(f"classifier cache {path}: {problem}; delete {json_path} and {keras_path} "
                         "to train the classifier again")


def _check_record(record, expected, json_path, pair):
    """Raises `DamagedCache` unless `record` is a complete record of the classifier expected."""
    def damaged(problem):
        return DamagedCache(json_path, problem, pair)

    if not isinstance(record, dict):
        raise damaged("not a JSON object")
    if sorted(record) != sorted(FIELDS):
        raise damaged(f"fields {sorted(record)}, expected {sorted(FIELDS)}")
    version = record["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
        raise damaged(f"format_version {version!r}, this vae_tf reads {FORMAT_VERSION}")
    for field in ("architecture", "data"):
        if record[field] != expected[field]:
            raise damaged(f"{field} {record[field]!r} is not the expected {expected[field]!r}")
    accuracy = record["test_accuracy"]
    if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool) or not 0 <= accuracy <= 1:
        raise damaged(f"test_accuracy must be a number in [0, 1], got {accuracy!r}")
    if not isinstance(record["weights_sha256"], str) or not _SHA256.fullmatch(record["weights_sha256"]):
        raise damaged(f"weights_sha256 must be 64 lowercase hex digits, got {record['weights_sha256']!r}")


def _load(pair, expected):
    """The cached classifier and its record, both checked (`DamagedCache` otherwise)."""
    import keras

    keras_path, json_path = pair
    try:
        record = json.loads(json_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedCache(json_path, f"not valid JSON ({error})", pair) from None
    _check_record(record, expected, json_path, pair)
    if not keras_path.is_file():
        raise DamagedCache(keras_path, "missing, though its record exists", pair)
    try:
        model = keras.saving.load_model(keras_path, safe_mode=True)  # untrusted files stay data
    except Exception as error:  # Keras raises many kinds for a damaged archive
        raise DamagedCache(keras_path, f"not a loadable .keras file ({type(error).__name__})", pair) from None
    if weights_sha256(model) != record["weights_sha256"]:
        raise DamagedCache(keras_path, "its weights do not match the weights_sha256 of its record", pair)
    layers = {layer.name for layer in model.layers}
    if FEATURE_LAYER not in layers or tuple(model.input_shape[1:]) != tuple(expected["data"]["image_shape"]):
        raise DamagedCache(keras_path, "not a feature classifier for these images", pair)
    return model, record


def cached_classifier(train, test, num_classes, source, spec=None, cache_dir=None, verbose=False):
    """The feature classifier of a labelled data set: read from the cache, or trained and
    cached when the cache has none.

    Args:
        train: (images (N, H, W, C) floats in [0, 1], labels (N,) int). The training split.
        test: the same for the test split (the accuracy reported).
        num_classes: int >= 2.
        source: str. The data set's name, recorded.
        spec: `ClassifierSpec` or None (the default spec).
        cache_dir: str, Path or None. Where classifiers are kept (created if missing);
            None: `default_cache_dir()`.
        verbose: bool. Keras' progress bar while training. Defaults to False.

    Returns:
        (classifier, record, path of its .keras file, trained): `record` is the JSON
        record (test_accuracy, weights_sha256, ...); `trained` says whether this call
        trained it.

    Example:

    >>> classifier, record, path, trained = cached_classifier(train, test, 10, "fashion_mnist")
    >>> record["test_accuracy"], record["weights_sha256"]
    """
    spec = spec or ClassifierSpec()
    identity = data_identity(train, test, num_classes, source)
    directory = pathlib.Path(default_cache_dir() if cache_dir is None else cache_dir)
    pair = cache_paths(directory, spec, identity)
    expected = {"architecture": spec.as_dict(), "data": identity}
    if pair[1].is_file():
        model, record = _load(pair, expected)
        log.info("feature classifier from %s", pair[0])
        return model, record, pair[0], False
    directory.mkdir(parents=True, exist_ok=True)
    log.info("training the feature classifier of %s (cached in %s)", source, directory)
    model, accuracy = train_classifier(spec, train, test, num_classes, verbose=verbose)
    record = {"format_version": FORMAT_VERSION, **expected, "test_accuracy": accuracy,
              "weights_sha256": weights_sha256(model)}
    atomic_write(pair[0], model.save)
    write_json(pair[1], record)
    return model, record, pair[0], True
