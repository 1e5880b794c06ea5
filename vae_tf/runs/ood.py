"""Out-of-distribution report of a run: its test split against other data, every score's
ROC figures of merit (and a calibrated run's precision and recall at its threshold),
written as JSON with a ROC figure and score histograms beside it."""

import pathlib

from vae_tf.analysis import anomaly, plots
from vae_tf.analysis.anomaly.streaming import stream_scores
from vae_tf.runs.calibration import load_calibration
from vae_tf.runtime.files import atomic_write, write_json
from vae_tf.runs.scoring import methods_to_score, resolve_iw_samples
from vae_tf.runs.sources import given_examples, open_run, run_feature_names, run_split

FIGURES = ("roc.png", "histograms.png")  # written beside the report


def ood_report(run, source, out="ood.json", methods=None, iw_samples=None, verbose=True):
    """Scores the run's test split (in-distribution) and `source` (out-of-distribution) and
    writes `out`, roc.png and histograms.png beside it.

    Args:
        run: `Run` or run directory.
        source: `vae_tf.runs.sources.DataSource` naming the other data (--images or --dataset).
        out: str or Path. The JSON report; its directory must exist. Defaults to "ood.json".
        methods: sequence of str or None. Scores; None: every one the model supports.
        iw_samples: int or None. See `vae_tf.runs.scoring.resolve_iw_samples`.
        verbose: bool. Show progress bars. Defaults to True.

    Returns:
        (report, paths): {"in", "out", "scores": {method: `anomaly.roc_report`}, and
        "calibrated" on a calibrated run}, and the files written (report first).

    Example:

    >>> report, _ = ood_report("runs/vae", DataSource(dataset="idx", data_dir="mnist"))
    >>> report["scores"]["regret"]["auroc"]
    """
    finished = open_run(run)
    model = finished.model
    given = given_examples(source, model, run_feature_names(finished) if source.dataset == "tabular" else None)
    if given is None:
        raise ValueError("give the out-of-distribution data: --dataset (and --data-dir) or --images")
    out = pathlib.Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: output directory does not exist")
    record = load_calibration(finished.path)  # a calibrated run also reports its threshold
    methods = methods_to_score(model, methods, record and record["score"])
    scorer = anomaly.Scorer(model, methods, resolve_iw_samples(iw_samples, record, model))
    odd, _ = stream_scores(scorer, given.batches, given.count, verbose=verbose)
    normal_examples = run_split(finished, "test")
    normal, _ = stream_scores(scorer, normal_examples.batches, normal_examples.count, verbose=verbose)
    in_name = normal_examples.name
    report = {"in": in_name, "out": given.name,
              "scores": {m: anomaly.roc_report(normal[m], odd[m]) for m in methods}}
    if record is not None:
        calibrated = record["score"]
        report["calibrated"] = {"score": calibrated, "fpr": record["fpr"],
                                **anomaly.threshold_report(normal[calibrated], odd[calibrated],
                                                           record["threshold"])}
    figures = (plots.ood_roc(normal, odd, in_name, given.name), plots.ood_histograms(normal, odd, in_name, given.name))
    paths = [out]
    for figure, file_name in zip(figures, FIGURES):
        paths.append(atomic_write(out.parent / file_name, lambda path: plots.save_figure(figure, path)))
    write_json(out, report)
    return report, paths
