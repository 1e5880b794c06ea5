"""What anomaly scores take: images (or a table's records) checked and made float32
arrays, and their batches."""

import numpy as np
import tensorflow as tf


def _check_records(records, expected, where):
    """One batch of a table's records as float32 (n, F), raw units: no range, no rescaling."""
    records = np.asarray(records)
    if records.shape[1:] != tuple(expected):
        raise ValueError(f"{where} have shape {records.shape[1:]} per record, but the model expects "
                         f"{tuple(expected)}")
    if records.dtype.kind not in "iuf":
        raise ValueError(f"{where} must be numbers, got dtype {records.dtype}")
    records = records.astype("float32")
    if not np.isfinite(records).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(records))[0])
        raise ValueError(f"{where} contain NaN or infinite values (first at record {row}, feature {column})")
    return records


def _check_batch(images, expected, where):
    """One batch as float32 in [0, 1], shaped (n, *expected); uint8 is divided by 255."""
    if len(expected) == 1:
        return _check_records(images, expected, where)
    images = np.asarray(images)
    if images.ndim == len(expected) and expected[-1] == 1:
        images = images[..., None]  # (n, H, W) grey images: add the channel axis
    if images.shape[1:] != tuple(expected):
        raise ValueError(
            f"{where} have shape {images.shape[1:]} per example, but the model expects "
            f"{tuple(expected)}"
        )
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise ValueError(f"{where} must be numbers, got dtype {images.dtype}")
    images = images.astype("float32")
    if not np.isfinite(images).all():
        raise ValueError(f"{where} contain NaN or infinite pixels")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(
            f"{where} must be floats in [0, 1] or uint8 in 0-255, got values in "
            f"[{images.min():g}, {images.max():g}]"
        )
    return images


def as_arrays(model, data, labels=None):
    """Checks `data` and returns (images float32 in [0, 1], labels or None) as numpy arrays.

    Args:
        model: AE, VAE or CVAE. Gives the expected image shape.
        data: array or tf.data.Dataset. Images (n, H, W, C) or (n, H, W) for one channel,
            floats in [0, 1] or uint8 0-255; or a dataset of image batches, of
            (images, labels) batches, or of single images. For a model of a table's
            records: records (n, F) of numbers in raw units (not rescaled).
        labels: array or None. Class ids for an array `data` (CVAE). Defaults to None.

    Returns:
        (images, labels): float32 array of shape (n, *model.image_shape), and int32
        labels or None.

    Raises:
        ValueError: empty data, NaN or infinite pixels, values outside the range, or
            images of another shape than the model's (both shapes named).
    """
    expected, what = tuple(model.image_shape), model.input_name
    if isinstance(data, tf.data.Dataset):
        element = data.element_spec
        images_spec = element[0] if isinstance(element, (tuple, list)) else element
        single_shapes = {expected, expected[:-1]} if expected[-1] == 1 and len(expected) > 1 else {expected}
        if tuple(images_spec.shape) in single_shapes:  # single images: batch them
            data = data.batch(256)
        batches, all_labels = [], []
        for batch in data:
            if isinstance(batch, (tuple, list)):
                batch, batch_labels = batch[0], batch[1]
                all_labels.append(np.asarray(batch_labels))
            batches.append(_check_batch(np.asarray(batch), expected, what))
        images = np.concatenate(batches) if batches else np.zeros((0, *expected), "float32")
        if all_labels and labels is None:
            labels = np.concatenate(all_labels)
    else:
        images = np.asarray(data)
        if images.ndim < 2:
            raise ValueError(
                f"images must be an array (n, {', '.join(map(str, expected))}), got shape "
                f"{images.shape}"
            )
        images = _check_batch(images, expected, what)
    if len(images) == 0:
        raise ValueError("images are empty: nothing to score")
    if labels is not None:
        labels = np.asarray(labels).astype("int32").reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    return images, labels


def batches(images, labels, batch_size):
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        yield (
            tf.constant(images[start:stop]),
            None if labels is None else tf.constant(labels[start:stop]),
        )
