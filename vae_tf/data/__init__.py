"""tf.data pipelines from IDX files, tensorflow-datasets, image folders, generated dSprites
and tables of numeric records.

`load_data` returns batched train / validation / test datasets of `(image, label)`
pairs (images float32 in [0, 1], shape (H, W, C); a table's records float32 (F,) in raw
units; labels int32, -1 when the source has none), built as map -> cache -> shuffle -> batch -> prefetch with the global batch size.
A training split read into memory whole (IDX files, tensorflow-datasets, tables) is also
offered as tensors with batches of shuffled indices (`IndexedBatches`): the same batches.
"""

import collections
import dataclasses
import functools
import gzip
import logging
import pathlib
import zlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
# Label meanings, as documented in the package's README (/usr/share/doc/dataset-fashion-mnist).
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
BINARIZE = ("none", "static", "dynamic")
# IDX magic numbers: 0x0000 08RR for unsigned bytes of rank RR.
_IDX_UINT8 = 0x08
# Fraction kept for testing when a source has no test split of its own.
_TEST_FRACTION = 0.2
_CARVE_SEED = 1234
_DSPRITES_TEST = 10_000


def read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) of unsigned bytes.

    Args:
        path: str or Path. A `*-idx3-ubyte` (images) or `*-idx1-ubyte` (labels) file,
            with or without `.gz`.

    Returns:
        A uint8 numpy array shaped as the file's header says.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, for a corrupt or truncated file or a bad header.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such IDX file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: cannot be read ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UINT8 or raw[3] < 1:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    rank = raw[3]
    header = 4 + 4 * rank
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({expected} bytes) but the file "
            f"has {len(raw)} bytes (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


# `decode`, when set, maps the splits' elements (file paths) to (image, label): the training
# split is shuffled before it is decoded, so the shuffle buffer holds paths, not images.
_Raw = collections.namedtuple(
    "_Raw", "train validation test image_shape num_classes source class_names factor_names "
    "feature_names feature_statistics paths decode",
    defaults=(None, None, None, None, None, None),
)


def read_ahead(dataset):
    """`dataset` prefetched, with tf.data's autotuning off.

    The autotuning thread made deleting an iterator wait 0.2-2 s in about half the
    `fit` calls of an MLP epoch on a 2-core machine (README, Performance), and every
    `fit`, `evaluate` and `predict` deletes one. Without it, a map with
    `num_parallel_calls=AUTOTUNE` runs on as many threads as there are cores.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


@dataclasses.dataclass(frozen=True)
class IndexedBatches:
    """Batches of examples held in memory, each given as the indices of its examples.

    `examples` is a tuple of tensors with the examples on axis 0 (images, labels);
    `indices` a dataset of integer index vectors, one per batch. `dataset()` is the
    batches themselves, gathered by tf.data. `Autoencoder.fit` takes either: a model
    whose training loop is compiled (`vae_tf.models.loops.compiled_loop`) keeps the examples
    in memory and gathers each batch inside its XLA program, with no input pipeline
    between the steps; any other model fits `dataset()`. The batches are the same.
    """

    examples: tuple
    indices: tf.data.Dataset

    def dataset(self):
        gather = lambda indices: tuple(tf.gather(t, indices) for t in self.examples)  # noqa: E731
        return read_ahead(self.indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE))


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
    tensorflow-datasets and tables, unless `binarize="dynamic"`), is `epoch(index)` as
    `IndexedBatches`: the same batches, for a model that gathers them itself; else None.
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


# --- sources: each returns raw splits before batching ------------------------------


def _idx_pair(directory, prefix):
    """Returns (images, labels) for `prefix` ("train" or "t10k"), or None if absent."""
    found = {}
    for kind, rank in (("images", 3), ("labels", 1)):
        matches = sorted(directory.glob(f"{prefix}-{kind}-idx{rank}-ubyte*"))
        if matches:
            found[kind] = matches[0]
    if not found:
        return None
    if "images" not in found or "labels" not in found:
        missing = "images" if "images" not in found else "labels"
        raise ValueError(f"{directory}: has {prefix} files but no {prefix}-{missing} file")
    images, labels = read_idx(found["images"]), read_idx(found["labels"])
    if images.ndim != 3:
        raise ValueError(f"{found['images']}: expected 3-D images, got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(
            f"{found['images']} has {len(images)} images but {found['labels']} has "
            f"{len(labels)} labels"
        )
    return images[..., None].astype("float32") / 255.0, labels.astype("int32")


def has_idx_files(directory):
    return any(pathlib.Path(directory).glob("*-images-idx3-ubyte*"))


def _carve(n, fraction, seed):
    """Splits range(n) into (keep, carved) index arrays with a fixed-seed permutation."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * fraction))
    return np.sort(order[cut:]), np.sort(order[:cut])


def load_idx_directory(directory):
    """Loads MNIST-format IDX files: `train-*` and `t10k-*`, or `t10k-*` alone.

    With only `t10k-*` files, a fixed 20% of them becomes the test split.

    Returns:
        ((train_images, train_labels), (test_images, test_labels)) as numpy arrays.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    train, test = _idx_pair(directory, "train"), _idx_pair(directory, "t10k")
    if test is None:
        raise ValueError(f"{directory}: no t10k-images-idx3-ubyte(.gz) / t10k-labels file")
    if train is None:
        keep, carved = _carve(len(test[0]), _TEST_FRACTION, _CARVE_SEED)
        train, test = (test[0][keep], test[1][keep]), (test[0][carved], test[1][carved])
    return train, test


def _list_images(directory):
    """Returns (paths, labels, class_names) of an image folder, labels from sub-folders."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    classes = sorted(p.name for p in directory.iterdir() if p.is_dir())
    if classes:
        paths, labels = [], []
        for label, name in enumerate(classes):
            found = sorted(p for p in (directory / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            paths += found
            labels += [label] * len(found)
    else:
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        labels = [-1] * len(paths)
    if not paths:
        raise ValueError(f"{directory}: no {'/'.join(IMAGE_SUFFIXES)} images found")
    return [str(p) for p in paths], np.array(labels, "int32"), classes


def _check_images_readable(paths):
    from PIL import Image

    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as error:  # PIL raises many types for broken files
            raise ValueError(f"{path}: unreadable image ({error})") from error


def _image_decoder(image_size, channels):
    """A function (path, label) -> (image in [0, 1] resized to `image_size`, label)."""
    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, image_size)
        return tf.clip_by_value(image, 0.0, 1.0), label

    return decode


def _tfds_splits(name, data_dir, validation_fraction, image_size):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"unknown data set {name!r}: give a tensorflow-datasets image data set, "
            f"'idx' or 'folder' (with --data-dir)"
        ) from error
    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"tensorflow-datasets {name!r} has no 'image' feature")
    try:
        builder.download_and_prepare()
    except Exception as error:
        hint = (
            "install the Debian package (apt-get install dataset-fashion-mnist) or pass "
            "--data-dir with its IDX files"
            if name == "fashion_mnist"
            else "pass --data-dir with the prepared data, or use --dataset idx/folder"
        )
        raise ValueError(f"cannot load {name!r} from tensorflow-datasets ({error}); {hint}") from error
    has_label = "label" in features
    num_classes = features["label"].num_classes if has_label else None
    class_names = tuple(features["label"].names) if has_label else None
    # Percent slices of "train": [test (only if no test split)][validation][train].
    test_percent = 0 if "test" in builder.info.splits else int(100 * _TEST_FRACTION)
    validation_percent = int(round(100 * validation_fraction))
    start = test_percent + validation_percent
    test_split = "test" if not test_percent else f"train[:{test_percent}%]"
    validation_split = f"train[{test_percent}%:{start}%]" if validation_percent else None
    train_split = f"train[{start}%:]"

    def convert(example):
        image = tf.cast(example["image"], tf.float32) / 255.0
        if image_size is not None:
            image = tf.image.resize(image, image_size)
        label = tf.cast(example["label"], tf.int32) if has_label else tf.constant(-1, tf.int32)
        return image, label

    def split(spec):
        return builder.as_dataset(split=spec, shuffle_files=False).map(
            convert, num_parallel_calls=tf.data.AUTOTUNE
        )

    image_shape = features["image"].shape
    if image_size is not None:
        image_shape = (*image_size, image_shape[-1])
    return _Raw(
        split(train_split),
        split(validation_split) if validation_split else None,
        split(test_split),
        tuple(image_shape),
        num_classes,
        f"tensorflow-datasets {name!r}",
        class_names,
    )


def _idx_directory(dataset, data_dir):
    """Returns the IDX directory to read for this request, or None for tfds."""
    if dataset == "idx":
        if data_dir is None:
            raise ValueError("dataset 'idx' needs --data-dir, a directory of IDX files")
        return pathlib.Path(data_dir)
    if data_dir is not None and pathlib.Path(data_dir).is_dir() and has_idx_files(data_dir):
        return pathlib.Path(data_dir)
    if dataset == "fashion_mnist" and data_dir is None and has_idx_files(DEBIAN_FASHION_MNIST):
        return DEBIAN_FASHION_MNIST
    return None


def _array_splits(directory, validation_fraction, seed, class_names=None):
    (x_train, y_train), (x_test, y_test) = load_idx_directory(directory)
    keep, held = _carve(len(x_train), validation_fraction, seed)
    pair = lambda x, y: tf.data.Dataset.from_tensor_slices((x, y))  # noqa: E731
    labels = np.concatenate([y_train, y_test])
    return _Raw(
        pair(x_train[keep], y_train[keep]),
        pair(x_train[held], y_train[held]) if len(held) else None,
        pair(x_test, y_test),
        x_train.shape[1:],
        int(labels.max()) + 1,
        f"IDX files in {directory}",
        class_names,
    )


def _folder_splits(data_dir, image_size, color_mode, validation_fraction, seed):
    if data_dir is None:
        raise ValueError("dataset 'folder' needs --data-dir, a directory of images")
    if image_size is None:
        raise ValueError("dataset 'folder' needs image_size (H, W), e.g. --image-size 64 64")
    if color_mode not in ("rgb", "grayscale"):
        raise ValueError(f"color_mode must be 'rgb' or 'grayscale', got {color_mode!r}")
    paths, labels, classes = _list_images(data_dir)
    _check_images_readable(paths)
    keep, test = _carve(len(paths), _TEST_FRACTION, _CARVE_SEED)
    train_idx, validation_idx = (keep[i] for i in _carve(len(keep), validation_fraction, seed))
    channels = 3 if color_mode == "rgb" else 1
    take = lambda idx: tf.data.Dataset.from_tensor_slices(  # noqa: E731
        ([paths[i] for i in idx], labels[idx])
    )
    return _Raw(
        take(train_idx),
        take(validation_idx) if len(validation_idx) else None,
        take(test),
        (*image_size, channels),
        len(classes) or None,
        f"image folder {data_dir} ({len(paths)} images)",
        tuple(classes) or None,
        paths={"validation": tuple(paths[i] for i in validation_idx),
               "test": tuple(paths[i] for i in test)},
        decode=_image_decoder(image_size, channels),
    )


def _dsprites_splits(validation_fraction, seed, limit):
    """dSprites rendered lazily: a fixed random 10,000-image test split; validation and
    train drawn from the rest with `seed` (`limit` training and round(fraction * limit)
    validation images when `limit` is given). Splits stream in random order."""
    from vae_tf.data.dsprites import DSprites

    sprites = DSprites()
    order = np.random.default_rng(_CARVE_SEED).permutation(sprites.num_images)
    test, pool = order[:_DSPRITES_TEST], np.random.default_rng(seed).permutation(order[_DSPRITES_TEST:])
    size = len(pool) if limit is None else limit
    held = int(round(size * validation_fraction))
    if held + size > len(pool):
        raise ValueError(
            f"limit {limit} with validation_fraction {validation_fraction} needs {held + size} images; "
            f"dSprites has {len(pool)} images outside its test split"
        )
    train = pool[held:] if limit is None else pool[held : held + limit]
    return _Raw(
        sprites.dataset(train),
        sprites.dataset(pool[:held]) if held else None,
        sprites.dataset(test),
        sprites.image_shape,
        None,
        f"generated dSprites ({len(train)} train images; labels are factor indices)",
        factor_names=sprites.factor_names,
    )


def _tabular_splits(data_dir, label_column, columns, validation_fraction, seed):
    """A table (`vae_tf.data.tabular.read_table`): a fixed 20% of its records for testing, then
    validation from the rest with `seed`; the training split's per-feature statistics."""
    from vae_tf.data.tabular import read_table

    if data_dir is None:
        raise ValueError("dataset 'tabular' needs --data-dir, a .csv, .npy or .npz file of records")
    table = read_table(data_dir, label_column=label_column, columns=columns)
    keep, test = _carve(len(table.features), _TEST_FRACTION, _CARVE_SEED)
    train_idx, validation_idx = (keep[i] for i in _carve(len(keep), validation_fraction, seed))
    if len(train_idx) < 2 or len(test) < 1:
        raise ValueError(f"{data_dir}: {len(table.features)} records are too few to split into "
                         "train and test")
    labels = table.labels if table.labels is not None else np.full(len(table.features), -1, "int32")
    pair = lambda idx: tf.data.Dataset.from_tensor_slices((table.features[idx], labels[idx]))  # noqa: E731
    train = table.features[train_idx].astype("float64")
    # Floor at a relative 1e-12: a column constant on the training split alone stays finite.
    variance = np.maximum(train.var(axis=0), 1e-12 * np.maximum(train.mean(axis=0) ** 2, 1.0))
    num_classes = None
    if table.labels is not None:
        num_classes = len(table.class_names) if table.class_names else int(table.labels.max()) + 1
    return _Raw(
        pair(train_idx),
        pair(validation_idx) if len(validation_idx) else None,
        pair(test),
        (len(table.feature_names),),
        num_classes,
        f"table {data_dir} ({len(table.features)} records, {len(table.feature_names)} features)",
        table.class_names,
        feature_names=table.feature_names,
        feature_statistics=(train.mean(axis=0).astype("float32"), variance.astype("float32")),
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


# --- the pipeline --------------------------------------------------------------------


def _binarize_fixed(dataset, seed):
    """Binarizes once with a fixed seed: stochastic, but the same every epoch and run."""
    def draw(index, example):
        image, label = example
        noise = tf.random.stateless_uniform(tf.shape(image), seed=tf.stack([seed, index]))
        return tf.cast(noise < image, tf.float32), label

    return dataset.enumerate().map(lambda i, ex: draw(tf.cast(i, tf.int32), ex))


def _binarize_per_batch(batches, keys):
    """A fresh Bernoulli draw for every batch: batch i uses the i-th of `keys` (int64)."""
    def draw(batch, key):
        images, labels = batch
        noise = tf.random.stateless_uniform(tf.shape(images), seed=tf.stack([key, 0]))
        return tf.cast(noise < images, tf.float32), labels

    return tf.data.Dataset.zip(batches, keys).map(draw, num_parallel_calls=tf.data.AUTOTUNE)


def _pipeline(dataset, batch_size, binarize, seed, cache, decode=None):
    """The evaluation pipeline: (decode) -> map (binarize) -> cache -> batch -> prefetch."""
    if decode is not None:
        dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if binarize == "static":
        dataset = dataset.map(lambda x, y: (tf.cast(x >= 0.5, tf.float32), y))
    elif binarize == "dynamic":
        dataset = _binarize_fixed(dataset, seed)
    if cache:
        dataset = dataset.cache()
    return read_ahead(dataset.batch(batch_size))


def training_pipelines(dataset, batch_size, binarize, seed, cache, decode=None, in_memory=False):
    """(train, epoch, indexed_epoch): a fresh shuffle (and Bernoulli draw) per epoch, after the cache.

    `train` reshuffles on every new iteration; `epoch(index)` is one epoch whose order
    and draws depend on (seed, index) alone. With `decode` (a function from an element,
    e.g. a file path and label, to (image, label)), `dataset` holds the undecoded
    elements: decoded in parallel before the cache when caching, else after the
    shuffle, so that an uncached epoch holds one shuffle buffer of paths, not images.
    Both give the same images in the same order (the shuffle's order depends on the
    seed and the element count alone).

    With `in_memory` (a dataset of known size whose elements are in memory already,
    nothing to decode) and no `binarize="dynamic"` (whose draws are made per batch),
    `indexed_epoch(index)` is `epoch(index)` as `IndexedBatches`: the same batches, by
    that same property, as shuffled indices into the prepared examples, which are
    gathered into tensors on its first call. Else it is None.
    """
    def prepare(elements):
        if decode is not None:
            elements = elements.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        if binarize == "static":
            elements = elements.map(lambda x, y: (tf.cast(x >= 0.5, tf.float32), y))
        return elements

    count = int(dataset.cardinality())
    prepared = prepare(dataset)
    if cache:
        dataset = prepared.cache()

    def shuffled(elements, shuffle_seed, reshuffle):
        return elements.shuffle(10_000, seed=shuffle_seed, reshuffle_each_iteration=reshuffle)

    def batches(shuffle_seed, reshuffle):
        batched = shuffled(dataset, shuffle_seed, reshuffle)
        if not cache:
            batched = prepare(batched)
        batched = batched.batch(batch_size)
        if binarize == "dynamic":
            keys = tf.data.Dataset.random(seed=shuffle_seed + 1, rerandomize_each_iteration=reshuffle)
            batched = _binarize_per_batch(batched, keys)
        return read_ahead(batched)

    def epoch_seed(index):
        return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])

    def epoch(index):
        return batches(epoch_seed(index), reshuffle=False)

    @functools.cache
    def examples():
        return tuple(prepared.batch(count).get_single_element())

    def indexed_epoch(index):
        order = shuffled(tf.data.Dataset.range(count), epoch_seed(index), reshuffle=False)
        return IndexedBatches(examples(), order.batch(batch_size))

    train = batches(seed, reshuffle=True)
    gatherable = in_memory and decode is None and count > 0 and binarize != "dynamic"
    return train, epoch, indexed_epoch if gatherable else None


def cache_plan(split_bytes, budget_mib):
    """Which splits to cache: in the given order, each one whose decoded size fits in
    what remains of `budget_mib` MiB.

    Args:
        split_bytes: dict of split name -> decoded size in bytes (None: unknown size,
            never cached).
        budget_mib: int. The memory budget in MiB, >= 0.

    Returns:
        A tuple of the names of the splits to cache.

    Example:

    >>> cache_plan({"train": 600 * 2**20, "test": 200 * 2**20}, 700)
    ('train',)
    """
    remaining, cached = budget_mib * 2**20, []
    for name, size in split_bytes.items():
        if size is not None and size <= remaining:
            cached.append(name)
            remaining -= size
    return tuple(cached)


def _decoded_bytes(dataset, image_shape, count=None):
    """float32 bytes of `dataset`'s images once decoded; None if its size is unknown."""
    count = int(dataset.cardinality()) if count is None else count
    return None if count < 0 else count * int(np.prod(image_shape)) * 4


def load_data(
    dataset="fashion_mnist",
    data_dir=None,
    batch_size=128,
    validation_fraction=0.1,
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

    Sources, in this order:
    - `dataset="idx"`, or any name with a `data_dir` holding `*-images-idx3-ubyte*`
      files: MNIST-format IDX files (a directory with only `t10k-*` files works).
    - `dataset="folder"`: PNG/JPEG images under `data_dir`, labelled by sub-folder if
      there are sub-folders; streamed from disk, resized to `image_size`.
    - `dataset="dsprites"`: dSprites generated on the fly (`vae_tf.data.dsprites`), 64x64x1
      binary images whose labels are int32 factor-index vectors (shape, scale,
      orientation, pos_x, pos_y); a fixed random 10,000 images are the test split.
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
            with a fixed seed. Defaults to 0.1.
        binarize: str. "none", "static" (threshold 0.5) or "dynamic" (a fresh
            Bernoulli draw per epoch for train; one fixed draw for validation and
            test). Defaults to "none".
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
    if binarize not in BINARIZE:
        raise ValueError(f"binarize must be one of {BINARIZE}, got {binarize!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    if image_size is not None:
        image_size = tuple(int(s) for s in image_size)
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be two positive integers (H, W), got {image_size}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1, got {limit}")
    if not isinstance(cache, int) or isinstance(cache, bool) or cache < 0:
        raise ValueError(f"cache must be a whole number of MiB >= 0, got {cache!r}")

    if dataset != "tabular" and (label_column is not None or columns is not None):
        raise ValueError("label_column and columns apply only to dataset 'tabular'")
    if dataset == "tabular" and binarize != "none":
        raise ValueError("binarize applies to images, not to dataset 'tabular'")

    if dataset == "tabular":
        raw = _tabular_splits(data_dir, label_column, columns, validation_fraction, seed)
    elif dataset == "dsprites":
        raw = _dsprites_splits(validation_fraction, seed, limit)
    elif dataset == "folder":
        raw = _folder_splits(data_dir, image_size, color_mode, validation_fraction, seed)
    elif (idx_dir := _idx_directory(dataset, data_dir)) is not None:
        fashion = dataset == "fashion_mnist" or idx_dir.resolve() == DEBIAN_FASHION_MNIST
        raw = _array_splits(idx_dir, validation_fraction, seed,
                            FASHION_MNIST_CLASS_NAMES if fashion else None)
    else:
        raw = _tfds_splits(dataset, data_dir, validation_fraction, image_size)
    if num_classes is not None:
        if raw.num_classes is None:
            raise ValueError(f"{raw.source} has no labels, but num_classes={num_classes} was asked for")
        if raw.num_classes > num_classes:
            raise ValueError(
                f"{raw.source}: labels go up to {raw.num_classes - 1} but num_classes is "
                f"{num_classes}; labels must be in [0, {num_classes})"
            )
    if limit is not None and dataset != "dsprites":
        raw = raw._replace(train=_subset(raw.train, limit, seed))
    log.info("data: %s, images %s, %s classes", raw.source, raw.image_shape, raw.num_classes)
    splits = {"train": raw.train, "validation": raw.validation, "test": raw.test}
    splits = {name: split for name, split in splits.items() if split is not None}
    if dataset in ("folder", "dsprites"):  # streamed: cached where the budget allows
        counts = {"train": limit} if dataset == "folder" else {}  # a subset's size is unknown to tf.data
        cached = cache_plan({name: _decoded_bytes(split, raw.image_shape, counts.get(name))
                             for name, split in splits.items()}, cache)
        log.info("data: caching %s in memory (budget %d MiB)", ", ".join(cached) or "nothing", cache)
    else:
        cached = tuple(splits)
    build = dict(batch_size=batch_size, binarize=binarize, seed=seed, decode=raw.decode)
    # Held as tensors: sources read into memory whole, whose size is known.
    in_memory = dataset not in ("folder", "dsprites") and raw.decode is None
    train, epoch, indexed_epoch = training_pipelines(raw.train, cache="train" in cached, in_memory=in_memory, **build)
    return DataSplits(
        train=train,
        validation=None if raw.validation is None else _pipeline(
            raw.validation, cache="validation" in cached, **build),
        test=_pipeline(raw.test, cache="test" in cached, **build),
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
    )
