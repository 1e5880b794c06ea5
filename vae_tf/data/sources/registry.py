"""The registry of data sources: what each needs, and the raw splits it reads.

Each source module registers one `Source` when it is imported. `load_data` asks `find`
which source serves a request, checks the request against it (`check`) and turns the
`RawSplits` it reads into pipelines; `vae_tf.config` takes `--dataset`'s help text from
`describe` and its checks from `check`, so a new source is one module, registered once.
"""

import collections
import dataclasses
from collections.abc import Callable

import numpy as np

# Fraction kept for testing when a source has no test split of its own, carved with a
# fixed seed so that every run of a data set tests on the same examples.
TEST_FRACTION = 0.2
CARVE_SEED = 1234

# A source's splits before batching: datasets of (image, label) pairs, or of undecoded
# elements (file paths) when `decode` maps them to (image, label), so that the training
# split is shuffled before it is decoded. The fields after `source` are as in DataSplits.
RawSplits = collections.namedtuple(
    "RawSplits", "train validation test image_shape num_classes source class_names factor_names "
    "feature_names feature_statistics paths decode",
    defaults=(None, None, None, None, None, None),
)


@dataclasses.dataclass(frozen=True)
class Request:
    """What `load_data` asks of a source (its arguments of the same names)."""

    dataset: str
    data_dir: str | None
    validation_fraction: float
    seed: int
    image_size: tuple | None = None
    color_mode: str = "rgb"
    limit: int | None = None
    label_column: str | None = None
    columns: object = None


@dataclasses.dataclass(frozen=True)
class Source:
    """A data source as `load_data` and the command line see it.

    Args:
        name: str or None. The `dataset` / `--dataset` value, e.g. "folder"; None for a
            source that serves only names given by `serves`.
        help: str. What it reads, for `--dataset`'s help.
        read: callable. `read(Request)` -> `RawSplits`.
        data_dir: str or None. What `data_dir` must be when the source needs one
            ("a directory of images"); None when it needs none.
        needs_image_size: bool. It resizes to `image_size`, which must be given.
        options: tuple of str. The `load_data` keywords that only this source takes.
        images: bool. False for records (a table): binarize and image_size refused.
        streamed: bool. Read from disk or generated again every epoch, so cached only
            within `load_data`'s `cache` budget; else held in memory whole.
        subsets: bool. It applies `limit` itself; else `load_data` takes a seeded
            subset of its training split.
        serves: callable or None. `serves(dataset, data_dir)` -> bool: it also serves
            this other name (sources are asked in the order they registered).
        sampler: callable or None. `sampler()` -> the data set's ground-truth factor
            sampler (as `vae_tf.data.dsprites.DSprites`: `sample`, `sample_fixed`, ...)
            that the disentanglement metrics draw from; None: no known factors.
    """

    name: str | None
    help: str
    read: Callable
    data_dir: str | None = None
    needs_image_size: bool = False
    options: tuple = ()
    images: bool = True
    streamed: bool = False
    subsets: bool = False
    serves: Callable | None = None
    sampler: Callable | None = None


_NAMED = {}
_SERVING = []


def register(source):
    """Adds a source; its name must be new."""
    if source.name is not None:
        if source.name in _NAMED:
            raise ValueError(f"data source {source.name!r} is already registered")
        _NAMED[source.name] = source
    if source.serves is not None:
        _SERVING.append(source)
    return source


def names():
    """The names of the registered sources, in registration order."""
    return tuple(_NAMED)


def describe():
    """One sentence listing the sources, for `--dataset`'s help."""
    named = [f"{name!r} ({source.help})" for name, source in _NAMED.items()]
    others = [source.help for source in _SERVING if source.name is None]
    return ", ".join(named) + "; any other name: " + "; ".join(others)


def find(dataset, data_dir=None):
    """The source that serves `dataset` (with `data_dir`): the one of that name, else the
    first whose `serves` says yes; ValueError if none does."""
    if dataset in _NAMED:
        return _NAMED[dataset]
    for source in _SERVING:
        if source.serves(dataset, data_dir):
            return source
    raise ValueError(f"no data source serves {dataset!r}; the sources are {names()}")


def factor_sampler(dataset):
    """The ground-truth factor sampler of the source called `dataset` (`Source.sampler`).

    Raises:
        ValueError: naming `dataset`, when it has no known generating factors.

    Example:

    >>> factor_sampler("dsprites_noisy").image_shape
    (64, 64, 3)
    """
    source = _NAMED.get(dataset)
    if source is None or source.sampler is None:
        known = tuple(name for name, s in _NAMED.items() if s.sampler is not None)
        raise ValueError(f"--dataset {dataset} has no known ground-truth factors; these do: {known}")
    return source.sampler()


def _flag(keyword):
    return "--" + keyword.replace("_", "-")


def check(dataset, data_dir=None, image_size=None, binarize="none", **options):
    """Refuses a request that the source called `dataset` cannot serve, naming the option.

    Args:
        dataset: str. The source's name (a name served by another source needs nothing more).
        data_dir, image_size, binarize: as `load_data` takes them.
        **options: the source-specific keywords (e.g. label_column), None when not given.

    Raises:
        ValueError: for a missing `--data-dir` or `--image-size`, an option of another
            source, or an image setting given for records.
    """
    source = _NAMED.get(dataset)
    for keyword, value in options.items():
        if value is not None and (source is None or keyword not in source.options):
            owners = ", ".join(s.name for s in _NAMED.values() if keyword in s.options)
            raise ValueError(f"{_flag(keyword)} applies only to --dataset {owners}, not {dataset!r}")
    if source is None:
        return
    if source.data_dir is not None and data_dir is None:
        raise ValueError(f"--dataset {dataset} needs --data-dir, {source.data_dir}")
    if source.needs_image_size and image_size is None:
        raise ValueError(f"--dataset {dataset} needs --image-size H W, e.g. --image-size 64 64")
    if not source.images:
        for flag, given in (("--binarize", binarize != "none"), ("--image-size", image_size is not None)):
            if given:
                raise ValueError(f"{flag} applies to images, not --dataset {dataset}")


def carve(n, fraction, seed):
    """Splits range(n) into (keep, carved) index arrays with a fixed-seed permutation."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * fraction))
    return np.sort(order[cut:]), np.sort(order[:cut])
