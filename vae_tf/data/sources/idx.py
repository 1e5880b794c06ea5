"""MNIST-format IDX files: `dataset="idx"`, any name whose `data_dir` holds IDX files, and
Fashion-MNIST from the Debian package `dataset-fashion-mnist` when installed."""

import gzip
import pathlib
import zlib

import numpy as np
import tensorflow as tf

from vae_tf.data.sources.registry import CARVE_SEED, TEST_FRACTION, RawSplits, Source, carve, register

DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
# Label meanings, as documented in the package's README (/usr/share/doc/dataset-fashion-mnist).
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# IDX magic numbers: 0x0000 08RR for unsigned bytes of rank RR.
_IDX_UINT8 = 0x08


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


def has_idx_files(directory):
    return any(pathlib.Path(directory).glob("*-images-idx3-ubyte*"))


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
        keep, carved = carve(len(test[0]), TEST_FRACTION, CARVE_SEED)
        train, test = (test[0][keep], test[1][keep]), (test[0][carved], test[1][carved])
    return train, test


def _serves(dataset, data_dir):
    """Any name with a `data_dir` of IDX files; fashion_mnist from the Debian package."""
    if data_dir is not None:
        return pathlib.Path(data_dir).is_dir() and has_idx_files(data_dir)
    return dataset == "fashion_mnist" and has_idx_files(DEBIAN_FASHION_MNIST)


def _read(request):
    directory = DEBIAN_FASHION_MNIST if request.data_dir is None else pathlib.Path(request.data_dir)
    fashion = request.dataset == "fashion_mnist" or directory.resolve() == DEBIAN_FASHION_MNIST
    (x_train, y_train), (x_test, y_test) = load_idx_directory(directory)
    keep, held = carve(len(x_train), request.validation_fraction, request.seed)
    pair = lambda x, y: tf.data.Dataset.from_tensor_slices((x, y))  # noqa: E731
    labels = np.concatenate([y_train, y_test])
    return RawSplits(
        pair(x_train[keep], y_train[keep]),
        pair(x_train[held], y_train[held]) if len(held) else None,
        pair(x_test, y_test),
        x_train.shape[1:],
        int(labels.max()) + 1,
        f"IDX files in {directory}",
        FASHION_MNIST_CLASS_NAMES if fashion else None,
    )


SOURCE = register(Source(
    name="idx", help="IDX files in --data-dir", read=_read, data_dir="a directory of IDX files",
    serves=_serves,
))
