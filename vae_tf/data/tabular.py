"""Tables of numeric records: read a CSV or a NumPy array into features and labels.

`read_table` checks every cell before anything else runs: a text or empty cell, a
ragged row or a header without records is one `ValueError` naming the file, the row
(the line number in the file, the header being line 1) and the column. A column with a
single value carries no information and would have zero variance in the model's
feature scaling: it is dropped with a warning.
"""

import csv
import dataclasses
import logging
import math
import pathlib

import numpy as np

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".npy", ".npz")


@dataclasses.dataclass(frozen=True)
class Table:
    """Records of a table: `features` float32 (records, F), `labels` int32 (records,) or
    None, the feature names and, when the label column holds text, the class names."""

    features: np.ndarray
    labels: np.ndarray | None
    feature_names: tuple
    class_names: tuple | None = None


def parse_columns(columns):
    """The feature names of `--columns a,b,c` (str or sequence), or None for all."""
    if columns is None:
        return None
    names = tuple(c.strip() for c in columns.split(",")) if isinstance(columns, str) else tuple(columns)
    if not names or any(not name for name in names):
        raise ValueError(f"--columns must be comma-separated column names, got {columns!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"--columns names {duplicates} more than once")
    return names


def read_table(path, label_column=None, columns=None, drop_constant=True):
    """Reads a table of numeric records.

    A CSV has a header row naming the columns; every other row is a record whose cells
    are numbers. A `.npy` file is one array (records, features); a `.npz` file holds an
    array `features` and optionally integer `labels`.

    Args:
        path: str or Path. A .csv, .npy or .npz file.
        label_column: str or None. CSV only: the column holding each record's class
            (integers, or text mapped to 0..K-1 in sorted order); it is kept out of the
            features. Defaults to None.
        columns: str, sequence of str or None. CSV only: the feature columns, in this
            order ("a,b,c" or a sequence). Defaults to None (every column but the label).
        drop_constant: bool. Drop columns with a single value, with a warning.
            Defaults to True.

    Returns:
        A `Table`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, row and column of the first bad cell, a ragged row,
            a header without records, an unknown column, or an array that is not 2-D.

    Example:

    >>> table = read_table("records.csv", label_column="diagnosis")
    >>> table.features.shape, table.feature_names[:2]
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such table file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: a table must be a {'/'.join(TABLE_SUFFIXES)} file")
    columns = parse_columns(columns)
    if suffix == ".csv":
        table = _read_csv(path, label_column, columns)
    else:
        if label_column is not None or columns is not None:
            raise ValueError(f"{path}: --label-column and --columns apply to CSV files; a .npz "
                             "file carries its labels as an array 'labels'")
        table = _read_array(path)
    if len(table.features) == 0:
        raise ValueError(f"{path}: no records")
    return _drop_constant_columns(table, path) if drop_constant else table


def _read_csv(path, label_column, columns):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{path}: empty file, expected a header row naming the columns")
    header = [cell.strip() for cell in rows[0]]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path}: header names columns {duplicates} more than once")
    records = [(line, row) for line, row in enumerate(rows[1:], start=2) if row]  # skip blank lines
    if not records:
        raise ValueError(f"{path}: header only, no records")
    for line, row in records:
        if len(row) != len(header):
            raise ValueError(f"{path}: row {line} has {len(row)} cells, but the header has {len(header)}")
    for name in (*(columns or ()), *((label_column,) if label_column is not None else ())):
        if name not in header:
            raise ValueError(f"{path}: no column {name!r}; the header has {header}")
    if label_column is not None and columns is not None and label_column in columns:
        raise ValueError(f"--label-column {label_column!r} is also in --columns; labels are not features")
    names = columns or tuple(name for name in header if name != label_column)
    if not names:
        raise ValueError(f"{path}: no feature columns besides the label column {label_column!r}")
    indices = [header.index(name) for name in names]
    features = np.empty((len(records), len(names)), "float32")
    for r, (line, row) in enumerate(records):
        for c, (name, index) in enumerate(zip(names, indices)):
            features[r, c] = _number(row[index], path, line, name)
    labels, class_names = (None, None)
    if label_column is not None:
        labels, class_names = _labels([row[header.index(label_column)] for _, row in records],
                                      [line for line, _ in records], path, label_column)
    return Table(features, labels, tuple(names), class_names)


def _number(cell, path, line, column):
    text = cell.strip()
    if not text:
        raise ValueError(f"{path}: row {line}, column {column!r}: empty cell (missing value)")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: row {line}, column {column!r}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}: row {line}, column {column!r}: {cell!r} is not a finite number")
    return value


def _labels(cells, lines, path, column):
    """(int32 class ids, class names or None): integer cells are ids, text is mapped to
    0..K-1 in sorted order (the names kept)."""
    cells = [cell.strip() for cell in cells]
    for cell, line in zip(cells, lines):
        if not cell:
            raise ValueError(f"{path}: row {line}, column {column!r}: empty label")
    try:
        ids = np.array([int(cell) for cell in cells], "int64")
    except ValueError:
        names = tuple(sorted(set(cells)))
        return np.array([names.index(cell) for cell in cells], "int32"), names
    if ids.min() < 0:
        line = lines[int(np.argmin(ids))]
        raise ValueError(f"{path}: row {line}, column {column!r}: class ids must be >= 0, got {ids.min()}")
    return ids.astype("int32"), None


def _read_array(path):
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot be read as a NumPy file ({error})") from error
    labels = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "features" not in loaded.files:
                raise ValueError(f"{path}: a .npz table needs an array 'features', found {loaded.files}")
            features = loaded["features"]
            labels = loaded["labels"] if "labels" in loaded.files else None
    else:
        features = loaded
    if features.ndim != 2 or features.dtype.kind not in "iuf":
        raise ValueError(f"{path}: features must be a 2-D numeric array (records, features), got "
                         f"shape {features.shape} and dtype {features.dtype}")
    features = features.astype("float32")
    finite = np.isfinite(features)
    if not finite.all():
        row, column = (int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{path}: record {row}, feature {column}: NaN or infinite value")
    if labels is not None:
        if labels.shape != (len(features),) or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
            raise ValueError(f"{path}: labels must be {len(features)} integer class ids >= 0, got shape "
                             f"{labels.shape} and dtype {labels.dtype}")
        labels = labels.astype("int32")
    names = tuple(f"feature_{j}" for j in range(features.shape[1]))
    return Table(features, labels, names)


def _drop_constant_columns(table, path):
    constant = np.all(table.features == table.features[:1], axis=0)
    if not constant.any():
        return table
    dropped = [name for name, c in zip(table.feature_names, constant) if c]
    if constant.all():
        raise ValueError(f"{path}: every feature column is constant ({dropped}): nothing to learn")
    log.warning("%s: dropped constant columns %s (a single value carries no information)", path, dropped)
    return dataclasses.replace(
        table,
        features=table.features[:, ~constant],
        feature_names=tuple(n for n, c in zip(table.feature_names, constant) if not c),
    )

