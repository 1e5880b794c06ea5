"""Inputs checked at the door of `fit`, `evaluate` and `predict`.

NumPy arrays are checked in full host-side, before any graph runs (a few passes over
memory, no TensorFlow work): the shape of one example (an image, or a table's
record of features) against the model's, NaN or inf values,
the [0, 1] range a Bernoulli likelihood needs, and labels that must be integer class
ids in range. A tf.data.Dataset is not read ahead (that would advance its shuffling):
its `element_spec` is checked host-side (shapes, label dtype), and every batch's values
inside the compiled train and test steps (`graph_checks`) and its labels inside the
predict step (`graph_label_checks`), whose failures `first_line_from_graph` turns into a
ValueError saying what is wrong on its first line.
"""

import contextlib
import math
import re

import numpy as np
import tensorflow as tf

from vae_tf.core.likelihoods import Bernoulli


MARK = "vae_tf input check: "  # starts the message of every in-graph check


def check_shape(model, got):
    """Raises ValueError unless the per-example shape `got` (of an image, or of a
    table's record) is the model's (unknown dimensions pass)."""
    expected, got = tuple(model.image_shape), tuple(got)
    if len(got) != len(expected) or any(g is not None and g != e for g, e in zip(got, expected)):
        hint = ""
        if len(got) == 1 and len(expected) > 1 and got[0] == math.prod(expected):
            hint = f"; reshape flat images with x.reshape(-1, {', '.join(map(str, expected))})"
        raise ValueError(f"{model.input_name} have shape {got} per example, "
                         f"but the model expects {expected}{hint}")


def check_element_spec(model, dataset, split):
    """Raises ValueError if the shapes or label dtype of a dataset's `element_spec` (from
    `split`, as `_split_data` splits a batch) do not fit `model`; reads no data."""
    images, labels = split(dataset.element_spec)
    if isinstance(images, tf.TensorSpec) and images.shape.rank is not None:
        check_shape(model, images.shape[1:])
    if model.is_conditional and isinstance(labels, tf.TensorSpec) and not labels.dtype.is_integer:
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype.name}")


def check_images(model, images):
    """Raises ValueError naming the problem with NumPy `images` for `model` (see module doc)."""
    if not isinstance(images, np.ndarray):
        return
    check_shape(model, images.shape[1:])
    what = model.input_name  # "features" (records of a table) or "images"
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


def _failed(message, *values):
    """An op that always fails with `message` (a tf.strings.format template) filled in."""
    return tf.debugging.Assert(False, [tf.strings.format(MARK + message, values)])


def _first_failure(checks):
    """One branch on all the (passed, fail) checks; when one fails, the first failing
    check's `fail()` runs, so its message is computed only then."""
    def report(remaining):
        (passed, fail), rest = remaining[0], remaining[1:]
        return fail() if not rest else tf.cond(passed, lambda: report(rest), fail)

    return tf.cond(tf.reduce_all(tf.stack([passed for passed, _ in checks])), tf.no_op,
                   lambda: report(checks))


def graph_checks(model, images, labels):
    """The value checks of `check_images` and `check_labels` as assertion ops on one batch.

    A passing batch costs three reductions and a scalar branch; the message (with the
    first bad index or the range found) is computed only when a check fails.

    Returns:
        (images, labels), to use in place of the inputs so the checks run first.
    """
    images = tf.cast(images, tf.float32)
    # x * 0 is 0 for every finite x and NaN for NaN and ±inf, so the sum is 0 iff all are finite.
    checks = [(tf.equal(tf.reduce_sum(images * 0.0), 0.0), lambda: _failed(
        "images contain NaN or infinite values (first at index {} of a batch)",
        tf.unravel_index(tf.argmin(tf.reshape(tf.cast(tf.math.is_finite(images), tf.int32), [-1])),
                         tf.shape(images, tf.int64))))]
    if isinstance(model.likelihood, Bernoulli):  # after the NaN check: NaN also fails this one
        low, high = tf.reduce_min(images), tf.reduce_max(images)
        checks.append(((low >= 0) & (high <= 1), lambda: _failed(
            "images range over [{}, {}], but a Bernoulli likelihood needs values in [0, 1]: "
            "scale them, e.g. x / 255", low, high)))
    checks += _label_checks(model, labels)
    with tf.control_dependencies([_first_failure(checks)]):
        return tf.identity(images), (None if labels is None else tf.identity(labels))


def graph_label_checks(model, labels):
    """The label check of `graph_checks` alone, for `predict` (its images get only the
    shape check); returns `labels`, to use in their place."""
    checks = _label_checks(model, labels)
    if not checks:
        return labels
    with tf.control_dependencies([_first_failure(checks)]):
        return tf.identity(labels)


def _label_checks(model, labels):
    """The (passed, fail) range check of a conditional model's integer `labels`, if any."""
    if not (model.is_conditional and labels is not None and labels.dtype.is_integer):
        return []
    low, high = tf.reduce_min(labels), tf.reduce_max(labels)
    return [((low >= 0) & (high < model.num_classes), lambda: _failed(
        f"labels must be class ids in [0, {model.num_classes}), found {{}}..{{}}", low, high))]


@contextlib.contextmanager
def first_line_from_graph():
    """Re-raises a failed `graph_checks` assertion as a ValueError whose first line says
    what is wrong (TensorFlow's own first line is "Graph execution error:")."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        found = re.search(re.escape(MARK) + r"(.*)\]", error.message)
        if found is None:
            raise
        raise ValueError(found.group(1)) from error
