"""`load_data`: a named source's splits as batched pipelines, and what a model needs to know
about them (`DataSplits`)."""

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from vae_tf.data import sources
from vae_tf.data.pipeline import (
    BINARIZE,
    IndexedBatches,
    cache_plan,
    decoded_bytes,
    evaluation_pipeline,
    training_pipelines,
)

log = logging.getLogger(__name__)

# Train on the whole training split, as Keras's `fit(validation_split=0.0)` and the PyTorch
# examples do: holding out 10% cost 0.4 nats of test NLL on binarized MNIST
# (docs/guides/defaults.md). A validation split is asked for: `vae-tf calibrate` needs one.
VALIDATION_FRACTION = 0.0


@dataclasses.dataclass(frozen=True)
class DataSplits:
    """Batched datasets and what a model needs to know about them.

    `factor_names` is set when the labels are ground-truth factor-index vectors
    (dSprites: ("shape", "scale", "orientation", "pos_x", "pos_y")), else None.

    `train` is one epoch, reshuffled on every iteration: pass it to `fit` with
    `epochs=N`. `epoch(index)` is one epoch whose shuffle order (and Bernoulli draws)
    depend on (seed, index) alone, so a run resumed at epoch k trains on the batches of
    an uninterrupted one: `vae_tf.runs.training` fits one `epoch(k)` at a time.
    `class_names[k]` names label k when the source says (tensorflow-datasets, image
    sub-folders, Fashion-MNIST); None when labels are bare numbers.
    For a table (`dataset="tabular"`), `image_shape` is (F,), `feature_names` names the
    F columns and `feature_statistics` is the training split's per-feature (mean,
    variance), which `make_model(feature_scaling=...)` builds into the model.
    `paths` gives, for an image folder, the file of each example of the `validation` and
    `test` splits, in the order they yield them ({"validation": (...), "test": (...)});
    None for other sources.
    `cached` names the splits kept in memory after their first pass (see `load_data`'s
    `cache`).
    `indexed_epoch(index)`, where the training split is in memory (IDX files,
    tensorflow-datasets and tables), is `epoch(index)` as
    `IndexedBatches`: the same batches, for a model that gathers them itself; else None.
    `sizes` holds the number of examples of each split where it is known in advance
    (e.g. {"train": 54000, "validation": 6000, "test": 10000}), for progress bars.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    image_shape: tuple
    num_classes: int | None
    source: str
    epoch: Callable[[int], tf.data.Dataset]
    class_names: tuple | None = None
    factor_names: tuple | None = None
    feature_names: tuple | None = None
    feature_statistics: tuple | None = None
    paths: dict | None = None
    cached: tuple = ()
    indexed_epoch: Callable[[int], IndexedBatches] | None = None
    sizes: dict = dataclasses.field(default_factory=dict)


def _check_arguments(batch_size, validation_fraction, binarize, image_size, limit, cache):
    if binarize not in BINARIZE:
        raise ValueError(f"binarize must be one of {BINARIZE}, got {binarize!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise ValueError(f"image_size must be two positive integers (H, W), got {image_size}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1, got {limit}")
    if not isinstance(cache, int) or isinstance(cache, bool) or cache < 0:
        raise ValueError(f"cache must be a whole number of MiB >= 0, got {cache!r}")


def _check_classes(raw, num_classes):
    if raw.num_classes is None:
        raise ValueError(f"{raw.source} has no labels, but num_classes={num_classes} was asked for")
    if raw.num_classes > num_classes:
        raise ValueError(
            f"{raw.source}: labels go up to {raw.num_classes - 1} but num_classes is "
            f"{num_classes}; labels must be in [0, {num_classes})"
        )


def _subset(dataset, limit, seed):
    """`limit` examples of `dataset` chosen at random with `seed`, in their original order."""
    size = int(dataset.cardinality())
    if size < 0:
        raise ValueError("limit needs a training set of known size; this source's size is unknown")
    if limit > size:
        raise ValueError(f"limit {limit} is more than the {size} training examples")
    keep = np.zeros(size, bool)
    keep[np.random.default_rng(seed).choice(size, limit, replace=False)] = True
    keep = tf.constant(keep)
    subset = dataset.enumerate().filter(lambda i, example: keep[i]).map(lambda i, example: example)
    # A filter hides the size; Keras needs it for the progress bar and to end an epoch quietly.
    return subset.apply(tf.data.experimental.assert_cardinality(limit))


def load_data(
    dataset="fashion_mnist",
    data_dir=None,
    batch_size=128,
    validation_fraction=VALIDATION_FRACTION,
    binarize="none",
    image_size=None,
    color_mode="rgb",
    num_classes=None,
    seed=0,
    limit=None,
    label_column=None,
    columns=None,
    cache=0,
):
    """Builds batched train / validation / test pipelines for a named source.

    Sources (`vae_tf.data.sources`), in this order:
    - `dataset="idx"`, or any name with a `data_dir` holding `*-images-idx3-ubyte*`
      files: MNIST-format IDX files (a directory with only `t10k-*` files works).
    - `dataset="folder"`: PNG/JPEG images under `data_dir`, labelled by sub-folder if
      there are sub-folders; streamed from disk, resized to `image_size`.
    - `dataset="dsprites"`: dSprites generated on the fly (`vae_tf.data.dsprites`), 64x64x1
      binary images whose labels are int32 factor-index vectors (shape, scale,
      orientation, pos_x, pos_y); a fixed random 10,000 images are the test split.
    - `dataset="dsprites_color"`, `"dsprites_noisy"`, `"dsprites_scream"`: its variants
      (`vae_tf.data.dsprites_variants`), 64x64x3, with the same factors and splits.
    - `dataset="tabular"`: the records of a table `data_dir`, a CSV file with a header
      row (or a .npy/.npz array (records, features); `vae_tf.data.tabular.read_table`),
      unscaled; a fixed 20% of the records are the test split.
    - `dataset="fashion_mnist"` without `data_dir`: the Debian package
      `dataset-fashion-mnist` when installed.
    - otherwise tensorflow-datasets by name, with `data_dir` passed through.

    Args:
        dataset: str. Source name. Defaults to "fashion_mnist".
        data_dir: str, Path or None. Directory to read. Defaults to None.
        batch_size: int. Global batch size. Defaults to 128.
        validation_fraction: float in [0, 1). Part of train held out for validation,
            chosen with `seed`; 0 holds out nothing (`validation` is None). Defaults
            to `VALIDATION_FRACTION` (0: train on all of it).
        binarize: str. "none", "static" (threshold 0.5) or "dynamic" (a fresh
            Bernoulli draw per batch for train; for validation and test one draw
            with a fixed seed, the same whatever `seed`). Defaults to "none".
        image_size: (H, W) or None. Resize images; required for "folder".
        color_mode: str. "rgb" or "grayscale" for "folder". Defaults to "rgb".
        num_classes: int or None. If given, labels must lie in [0, num_classes).
        seed: int. Shuffling, validation-split and `limit` seed. Defaults to 0.
        limit: int or None. Train on a random subset of this many training examples
            (chosen with `seed`); dSprites also holds out round(validation_fraction *
            limit) validation images. Defaults to None (all).
        label_column: str or None. "tabular" CSV only: the column of class labels, kept
            out of the features. Defaults to None.
        columns: str, sequence of str or None. "tabular" CSV only: the feature columns
            ("a,b,c"). Defaults to None (all but the label column).
        cache: int. MiB of memory for keeping the decoded images of streamed sources
            (image folders, dSprites) after their first epoch: train, then validation,
            then test are cached each if its float32 images fit in what remains; the
            others are decoded again every epoch. In-memory sources (IDX files,
            tensorflow-datasets) are always cached. Defaults to 0 (stream).

    Returns:
        A `DataSplits`.

    Example:

    >>> splits = load_data("mnist", data_dir="../shared/data/mnist", batch_size=128)
    >>> model.fit(splits.train, validation_data=splits.validation)
    """
    if image_size is not None:
        image_size = tuple(int(s) for s in image_size)
    _check_arguments(batch_size, validation_fraction, binarize, image_size, limit, cache)
    sources.check(dataset, data_dir, image_size, binarize, label_column=label_column, columns=columns)
    source = sources.find(dataset, data_dir)
    raw = source.read(sources.Request(dataset, data_dir, validation_fraction, seed, image_size,
                                      color_mode, limit, label_column, columns))
    if num_classes is not None:
        _check_classes(raw, num_classes)
    if limit is not None and not source.subsets:
        raw = raw._replace(train=_subset(raw.train, limit, seed))
    log.info("data: %s, images %s, %s classes", raw.source, raw.image_shape, raw.num_classes)
    splits = {"train": raw.train, "validation": raw.validation, "test": raw.test}
    splits = {name: split for name, split in splits.items() if split is not None}
    if source.streamed:  # cached where the budget allows
        counts = {"train": limit}  # a subset's size is unknown to tf.data
        cached = cache_plan({name: decoded_bytes(split, raw.image_shape, counts.get(name))
                             for name, split in splits.items()}, cache)
        log.info("data: caching %s in memory (budget %d MiB)", ", ".join(cached) or "nothing", cache)
    else:
        cached = tuple(splits)
    build = dict(batch_size=batch_size, binarize=binarize, decode=raw.decode)
    in_memory = not source.streamed and raw.decode is None
    train, epoch, indexed_epoch = training_pipelines(raw.train, cache="train" in cached, in_memory=in_memory,
                                                     seed=seed, **build)
    return DataSplits(
        train=train,
        validation=None if raw.validation is None else evaluation_pipeline(
            raw.validation, cache="validation" in cached, **build),
        test=evaluation_pipeline(raw.test, cache="test" in cached, **build),
        image_shape=tuple(raw.image_shape),
        num_classes=raw.num_classes if num_classes is None else num_classes,
        source=raw.source,
        epoch=epoch,
        class_names=raw.class_names,
        factor_names=raw.factor_names,
        feature_names=raw.feature_names,
        feature_statistics=raw.feature_statistics,
        paths=raw.paths,
        cached=cached,
        indexed_epoch=indexed_epoch,
        sizes={name: size for name, split in splits.items() if (size := int(split.cardinality())) >= 0},
    )
