"""Anomaly scores of a run: per-example score tables of any data, and the threshold a run
is calibrated with (RUN_DIR/anomaly.json). The scores are `vae_tf.analysis.anomaly`'s."""

import dataclasses

import numpy as np

from vae_tf.analysis import anomaly
from vae_tf.analysis.anomaly.streaming import stream_scores
from vae_tf.analysis.evaluation import IW_SAMPLES
from vae_tf.runs.calibration import load_calibration, save_calibration
from vae_tf.runtime.files import write_csv
from vae_tf.runs.runlock import run_lock
from vae_tf.runs.sources import NO_VALIDATION, examples, open_run, run_split


def methods_to_score(model, requested=None, also=None):
    """The scores to compute: `requested`, or all `model` supports, plus `also` (e.g. the
    calibrated score) if missing."""
    methods = list(requested or anomaly.available_methods(model))
    if also and also not in methods:
        methods.append(also)
    return methods


def resolve_iw_samples(requested, record, model):
    """The importance samples to score with: `requested`, else the calibration's (its
    threshold holds only for the score it was set on), else `IW_SAMPLES`.

    Args:
        requested: int or None. What the caller asked for.
        record: dict or None. The run's calibration (`runs.calibration.load_calibration`).
        model: the run's model.

    Raises:
        ValueError: `requested` differs from the calibration's on a score that draws them.
    """
    calibrated = (record or {}).get("options", {}).get("iw_samples")
    if requested is None:
        return calibrated or IW_SAMPLES
    uses_them = record and (record["score"] == "iw_nll" or (record["score"] == "complexity" and model.is_variational))
    if calibrated and uses_them and requested != calibrated:
        raise ValueError(f"--iw-samples {requested}: the run was calibrated on {record['score']} "
                         f"with {calibrated} importance samples; leave --iw-samples out to use them")
    return requested


@dataclasses.dataclass
class ScoreTable:
    """Per-example scores as columns: index, path (image folders), label, one per score
    (nats, higher = more anomalous, as text with 4 decimals) and, on a calibrated run,
    anomaly (0/1).

    Attributes:
        name: str. What was scored, e.g. "vae test split".
        methods: list of str. The score columns.
        columns: dict {column: list of values}, in CSV order.
    """

    name: str
    methods: list
    columns: dict

    @property
    def rows(self):
        return len(self.columns["index"])

    def write_csv(self, path):
        """Writes the table as CSV (atomically); returns the Path."""
        return write_csv(path, list(self.columns), zip(*self.columns.values()))


def score_data(run, source=None, methods=None, iw_samples=None, require_calibration=False, verbose=True):
    """Per-example anomaly scores of a run's split or of other data.

    Args:
        run: `Run` or run directory.
        source: `vae_tf.runs.sources.DataSource` or None (the run's test split).
        methods: sequence of str or None. Scores (`anomaly.METHODS`); None: every one the
            model supports. A calibrated run's score is always added.
        iw_samples: int or None. See `resolve_iw_samples`.
        require_calibration: bool. Refuse a run that was never calibrated (so the table
            has its anomaly column). Defaults to False.
        verbose: bool. Show a progress bar. Defaults to True.

    Returns:
        A `ScoreTable`.

    Example:

    >>> table = score_data("runs/vae", DataSource(images="odd.npy"), ["regret"])
    >>> table.write_csv("scores.csv")
    """
    finished = open_run(run)
    model = finished.model
    record = load_calibration(finished.path)
    if require_calibration and record is None:
        raise ValueError(f"{finished.path} was never calibrated: "
                         f"run vae-tf calibrate {finished.path} first")
    methods = methods_to_score(model, methods, record and record["score"])
    given = examples(finished, source)
    scorer = anomaly.Scorer(model, methods, resolve_iw_samples(iw_samples, record, model))
    scores, labels = stream_scores(scorer, given.batches, given.count, verbose=verbose)
    columns = {"index": list(range(len(next(iter(scores.values())))))}
    if given.paths is not None:  # an image folder: the file of each row
        columns["path"] = given.paths
    if labels is not None:  # a class id, or a factor-index vector (dSprites) as "i j k"
        columns["label"] = [" ".join(str(i) for i in np.atleast_1d(v)) for v in labels]
    columns.update({m: [f"{v:.4f}" for v in scores[m]] for m in methods})
    if record is not None:
        columns["anomaly"] = anomaly.is_anomaly(scores, record).astype(int).tolist()
    return ScoreTable(given.name, methods, columns)


def calibrate_run(run, method=None, fpr=anomaly.FPR, iw_samples=IW_SAMPLES, verbose=True):
    """Picks the threshold of score `method` that flags `fpr` of the run's validation split
    and stores it as RUN_DIR/anomaly.json (exports then get an `anomaly` signature).

    Args:
        run: `Run` or run directory.
        method: str or None. The score; None: `anomaly.default_method(model)`.
        fpr: float in (0, 1). Fraction of normal inputs to flag. Defaults to `anomaly.FPR`.
        iw_samples: int. Importance samples of iw_nll and a VAE's complexity. Defaults to
            `IW_SAMPLES`.
        verbose: bool. Show a progress bar. Defaults to True.

    Returns:
        (record, path): the `anomaly.calibrate` record and the file written.
    """
    finished = open_run(run)
    model = finished.model
    method = method or anomaly.default_method(model)
    anomaly.check_methods(model, [method])
    if not 0.0 < fpr < 1.0:  # before scoring, and naming the option
        raise ValueError(f"--fpr must be in (0, 1), got {fpr}")
    if finished.config.data.validation_fraction == 0:  # before any data is read
        raise ValueError(f"calibrate picks its threshold on the run's validation split, and this run "
                         f"has none: {NO_VALIDATION}")
    with run_lock(finished.path):
        given = run_split(finished, "validation")
        scorer = anomaly.Scorer(model, [method], iw_samples)
        scores, _ = stream_scores(scorer, given.batches, given.count, verbose=verbose)
        options = {"iw_samples": iw_samples, "seed": 0, **anomaly.REGRET_OPTIONS}
        record = anomaly.calibrate(scores[method], fpr, method, options)
        return record, save_calibration(finished.path, record)
