"""A table of numeric records (`vae_tf.data.tabular.read_table`), unscaled: a fixed 20% of
its records for testing, validation from the rest with `seed`, and the training split's
per-feature statistics for the model's feature scaling."""

import numpy as np
import tensorflow as tf

from vae_tf.data.sources.registry import CARVE_SEED, TEST_FRACTION, RawSplits, Source, carve, register
from vae_tf.data.tabular import read_table


def _read(request):
    data_dir = request.data_dir
    table = read_table(data_dir, label_column=request.label_column, columns=request.columns)
    keep, test = carve(len(table.features), TEST_FRACTION, CARVE_SEED)
    train_idx, validation_idx = (keep[i] for i in carve(len(keep), request.validation_fraction, request.seed))
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
    return RawSplits(
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


SOURCE = register(Source(
    name="tabular", help="records of the .csv/.npy/.npz file --data-dir", read=_read,
    data_dir="a .csv, .npy or .npz file of records", options=("label_column", "columns"), images=False,
))
