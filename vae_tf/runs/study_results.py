"""A study's results: results.csv (a row per run) and plots/scores.png (box plots).

A run's row holds its place in the grid, its status, where its log is, its test metrics
(the run's metrics.json: -ELBO, reconstruction, ...) and its disentanglement scores
(scores/NAME.json, nested entries flattened as "dci.disentanglement"). The figure has
one panel per metric: the one number per metric that the papers report
(`vae_tf.analysis.disentanglement.summary`).
"""

import json
import math
import pathlib

from vae_tf.analysis.disentanglement import summary
from vae_tf.analysis.plots import save_figure
from vae_tf.analysis.study_figures import metric_boxes
from vae_tf.runs.run import is_run, read_metrics
from vae_tf.runtime.files import write_csv

COLUMNS = ("run", "model", "family", "option", "value", "seed", "status", "log", "error")
# Entries of the scores JSON that describe the computation, or repeat other entries.
BOOKKEEPING = ("seed", "samples", "summary")


def flatten_scores(scores):
    """{"mig": 0.1, "dci": {"disentanglement": 0.2, ...}} -> {"mig": 0.1,
    "dci.disentanglement": 0.2, ...}: the finite numbers, bookkeeping and lists left out."""
    flat = {}

    def visit(prefix, value):
        if isinstance(value, dict):
            for key, item in value.items():
                visit(f"{prefix}.{key}" if prefix else key, item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[prefix] = value

    visit("", {k: v for k, v in scores.items() if k not in BOOKKEEPING})
    return flat


def _status(root, study_run, task):
    final, scores = root / "runs" / study_run.name, root / "scores" / f"{study_run.name}.json"
    if task is not None and task.status in ("failed", "stopped"):
        attempt = task.log.read_text(errors="replace").split("\n== ")[-1]  # the command's last start
        said = [line for line in attempt.splitlines() if line.startswith("vae-tf: ")]
        return task.status, f"{task.step} exited with {task.exit_code}" + (f" ({said[-1][8:]})" if said else "")
    if is_run(final) and scores.is_file():
        return "finished", ""
    return "pending", ""


def write_results(root, runs, tasks):
    """Writes results.csv and the figure for `runs` (`StudyRun`s) in study directory `root`.

    Args:
        root: Path. The study's directory.
        runs: list of `vae_tf.runs.study.StudyRun`.
        tasks: dict. {run name: `vae_tf.runs.study_jobs.Task`} of this invocation.

    Returns:
        (rows, (csv path, figure path or None when no run has scores)).
    """
    root = pathlib.Path(root)
    rows, metric_columns, score_columns, headlines = [], {}, {}, {}
    for study_run in runs:
        sweep = study_run.sweep
        status, error = _status(root, study_run, tasks.get(study_run.name))
        row = {"run": study_run.name, "model": sweep.label, "family": sweep.model, "option": sweep.option,
               "value": study_run.value, "seed": study_run.seed, "status": status,
               "log": f"logs/{study_run.name}.log", "error": error}
        if status == "finished":
            metrics = read_metrics(root / "runs" / study_run.name / "metrics.json")
            raw = json.loads((root / "scores" / f"{study_run.name}.json").read_text())
            scores = flatten_scores(raw)
            headlines[study_run.name] = summary(raw)
            metric_columns.update(dict.fromkeys(metrics))
            score_columns.update(dict.fromkeys(scores))
            row.update(metrics)
            row.update(scores)
        rows.append(row)
    header = [*COLUMNS, *metric_columns, *score_columns]
    csv_path = write_csv(root / "results.csv", header, [[row.get(c, "") for c in header] for row in rows])
    finished = [row for row in rows if row["status"] == "finished"]
    if not finished:
        return rows, (csv_path, None)
    models = list(dict.fromkeys(row["model"] for row in rows))
    names = dict.fromkeys(name for run in headlines.values() for name in run)
    values = {name: {model: [headlines[row["run"]][name] for row in finished
                             if row["model"] == model and name in headlines[row["run"]]]
                     for model in models}
              for name in names}
    title = f"{len(finished)} of {len(rows)} runs"
    return rows, (csv_path, save_figure(metric_boxes(values, models, title), root / "plots" / "scores.png"))
