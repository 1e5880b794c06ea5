"""The examples a command works on, as numpy batches: a run's own split, a .npy file of
images, or another data set or table (`DataSource`), all checked before any is scored."""

import dataclasses
import pathlib

import numpy as np

from vae_tf.analysis.anomaly import as_arrays
from vae_tf.data import sources as data_sources
from vae_tf.runs.run import Run
from vae_tf.runs.training import load_config_data

SPLITS = ("train", "validation", "test")  # the splits of vae_tf.data.DataSplits
# Why a run has no validation split, and the fix.
NO_VALIDATION = ("it was trained with --validation-fraction 0, the default, which trains on every "
                 "training example; train it again with --validation-fraction 0.1 (say) to hold one out")


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Examples other than a run's own: `images` (a .npy file), or a data set described by
    `load_data`'s options (`dataset` and those after it); neither means the run's `split`.

    Args:
        images: str or None. A .npy array of images (N, H, W[, C]), floats in [0, 1] or
            uint8 0-255, loaded with allow_pickle=False.
        dataset, data_dir, image_size, color_mode, label_column, columns: `load_data`'s
            options (`vae_tf.config.DataConfig`); unset ones follow the run's model.
        split: str. The split of `dataset`, or of the run. Defaults to "test".

    Example:

    >>> DataSource(dataset="idx", data_dir="mnist")      # MNIST's test split
    """

    images: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    image_size: tuple | None = None
    color_mode: str | None = None
    label_column: str | None = None
    columns: str | None = None
    split: str = "test"


@dataclasses.dataclass
class Examples:
    """A named stream of (inputs, labels or None) numpy batches; `count` (or None when not
    known in advance) sizes a progress bar, `paths` names the file of each example."""

    name: str
    batches: object
    count: int | None = None
    paths: list | None = None


def open_run(run):
    """`run` as a `Run` (a path is read)."""
    return run if isinstance(run, Run) else Run(run)


def open_with_data(run):
    """(run, model, data splits) of a finished run; the model first, so an unfinished run
    is refused before any data is read."""
    finished = open_run(run)
    model = finished.model
    return finished, model, load_config_data(finished.config)


def split_of(data, name, whose="the run"):
    """The split `name` of `data`, refusing one the run (or `whose` data) does not have.

    Only a validation split can be missing: a run trained with `--validation-fraction 0`,
    the default, holds none out; the error says how to get one.
    """
    split = getattr(data, name)
    if split is None:
        if whose == "the run":
            raise ValueError(f"the run has no {name} split: {NO_VALIDATION}; or use --split train or test")
        raise ValueError(f"{whose} has no {name} split here: use --split train or test")
    return split


def _labelled(data):
    """Whether a source's labels mean something: class ids, or dSprites' factor vectors."""
    return data.num_classes is not None or data.factor_names is not None


def _numpy_batches(split, labelled):
    for x, y in split:
        yield x.numpy(), (y.numpy() if labelled else None)


def run_split(run, name):
    """The `Examples` of a run's own split `name`."""
    finished = open_run(run)
    data = load_config_data(finished.config)
    batches = _numpy_batches(split_of(data, name), _labelled(data))
    return Examples(f"{finished.name} {name} split", batches, data.sizes.get(name), (data.paths or {}).get(name))


def run_feature_names(run):
    """The feature columns a run trained on a table uses (after dropping constant ones), or None."""
    finished = open_run(run)
    if finished.model.input_name != "features" or finished.config.data.dataset != "tabular":
        return None
    return load_config_data(finished.config).feature_names


def examples(run, source=None):
    """The `Examples` of `source`, or of the run's own split when it names no data."""
    finished = open_run(run)
    source = source or DataSource()
    given = given_examples(source, finished.model, run_feature_names(finished) if source.dataset == "tabular" else None)
    return given or run_split(finished, source.split)


def given_examples(source, model, feature_names=None):
    """The `Examples` of `source`'s --images or --dataset for `model`, or None if it names
    neither. A table (--dataset tabular) is read whole, with the columns `feature_names`."""
    from vae_tf.data import load_data

    if source.images is not None and source.dataset is not None:
        raise ValueError("give --images or --dataset, not both")
    if source.images is not None:
        if model.is_conditional:
            raise ValueError("a conditional run needs labels: use --dataset with labelled data, not --images")
        try:
            array = np.load(source.images, allow_pickle=False)
        except EOFError:  # numpy's word for an empty file
            raise ValueError(f"{source.images}: empty, not a .npy array") from None
        images, _ = as_arrays(model, array)
        return Examples(pathlib.Path(source.images).name, [(images, None)], len(images))
    if source.dataset is None:
        if source.data_dir or source.image_size or source.color_mode or source.label_column or source.columns:
            raise ValueError("--data-dir, --image-size, --color-mode, --label-column and --columns "
                             "need --dataset")
        return None
    if source.dataset == "tabular" or model.input_name == "features":
        return _given_table(source, model, feature_names)
    height, width, channels = model.image_shape
    data = load_data(source.dataset, source.data_dir, batch_size=256, validation_fraction=0.0,
                     image_size=source.image_size or (height, width),
                     color_mode=source.color_mode or ("grayscale" if channels == 1 else "rgb"))
    batches = _numpy_batches(split_of(data, source.split, f"--dataset {source.dataset}"), _labelled(data))
    return Examples(data.source, batches, data.sizes.get(source.split), (data.paths or {}).get(source.split))


def _given_table(source, model, feature_names):
    """Every record of the table `source.data_dir`, with the columns the run was trained on
    (`feature_names`, None for a .npy/.npz)."""
    from vae_tf.data.tabular import read_table

    if source.dataset != "tabular" or model.input_name != "features":
        raise ValueError("--dataset tabular goes with a run trained on a table, and a run trained on "
                         "a table scores --dataset tabular")
    data_sources.check(source.dataset, source.data_dir)
    if source.split != "test":
        raise ValueError("--split applies to image data sets; a table given here is scored whole")
    csv_file = pathlib.Path(source.data_dir).suffix.lower() == ".csv"
    columns = source.columns or (feature_names if csv_file else None)
    table = read_table(source.data_dir, source.label_column, columns, drop_constant=False)
    records, _ = as_arrays(model, table.features)
    return Examples(pathlib.Path(source.data_dir).name, [(records, table.labels)], len(records))
