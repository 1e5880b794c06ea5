"""Image files under `data_dir`, labelled by sub-folder when there are sub-folders;
streamed from disk and resized to `image_size`."""

import pathlib

import numpy as np
import tensorflow as tf

from vae_tf.data.sources.registry import CARVE_SEED, TEST_FRACTION, RawSplits, Source, carve, register

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
COLOR_MODES = ("rgb", "grayscale")


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


def _read(request):
    if request.color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be 'rgb' or 'grayscale', got {request.color_mode!r}")
    paths, labels, classes = _list_images(request.data_dir)
    _check_images_readable(paths)
    keep, test = carve(len(paths), TEST_FRACTION, CARVE_SEED)
    train_idx, validation_idx = (keep[i] for i in carve(len(keep), request.validation_fraction, request.seed))
    channels = 3 if request.color_mode == "rgb" else 1
    take = lambda idx: tf.data.Dataset.from_tensor_slices(  # noqa: E731
        ([paths[i] for i in idx], labels[idx])
    )
    return RawSplits(
        take(train_idx),
        take(validation_idx) if len(validation_idx) else None,
        take(test),
        (*request.image_size, channels),
        len(classes) or None,
        f"image folder {request.data_dir} ({len(paths)} images)",
        tuple(classes) or None,
        paths={"validation": tuple(paths[i] for i in validation_idx),
               "test": tuple(paths[i] for i in test)},
        decode=_image_decoder(request.image_size, channels),
    )


SOURCE = register(Source(
    name="folder", help="images in --data-dir", read=_read, data_dir="a directory of images",
    needs_image_size=True, streamed=True,
))
