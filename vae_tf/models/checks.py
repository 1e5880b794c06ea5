"""Inputs checked at the door of `fit`, `evaluate` and `predict`, host-side, before any graph runs.

NumPy arrays are checked in full (a few passes over memory, no TensorFlow work): the
shape of one example (an image, or a table's record of features) against the model's, NaN or inf values, the [0, 1] range a Bernoulli
likelihood needs, and labels that must be integer class ids in range. A tf.data.Dataset
is checked by its element shape only (reading a batch would advance its shuffling).
"""

import math

import numpy as np
import tensorflow as tf

from vae_tf.likelihoods import Bernoulli


def check_images(model, images):
    """Raises ValueError naming the problem with `images` for `model` (see module doc)."""
    if isinstance(images, tf.data.Dataset):
        return
    if not isinstance(images, np.ndarray):
        return
    what = model.input_name  # "features" (records of a table) or "images"
    expected, got = tuple(model.image_shape), images.shape[1:]
    if got != expected:
        hint = ""
        if len(got) == 1 and len(expected) > 1 and got[0] == math.prod(expected):
            hint = f"; reshape flat images with x.reshape(-1, {', '.join(map(str, expected))})"
        raise ValueError(f"{what} have shape {got} per example, but the model expects {expected}{hint}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        index = np.unravel_index(np.argmin(np.isfinite(images)), images.shape)
        raise ValueError(f"{what} contain NaN or infinite values (first at index {tuple(map(int, index))})")
    if isinstance(model.likelihood, Bernoulli) and images.size:
        low, high = images.min(), images.max()
        if low < 0 or high > 1:
            raise ValueError(f"{what} range over [{low:g}, {high:g}], but a Bernoulli likelihood needs "
                             "values in [0, 1]: scale them, e.g. x / 255")


def check_labels(model, labels):
    """Raises ValueError unless NumPy `labels` are integer class ids in [0, num_classes)."""
    if not isinstance(labels, np.ndarray) or not model.is_conditional:
        return
    integral = labels.dtype.kind in "iu" or (labels.dtype.kind == "f" and np.all(np.mod(labels, 1) == 0))
    if not integral or labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of integer class ids, got dtype {labels.dtype} "
                         f"and shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= model.num_classes):
        raise ValueError(f"labels must be class ids in [0, {model.num_classes}), "
                         f"found {labels.min()}..{labels.max()}")
