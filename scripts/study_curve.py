"""Disentanglement scores against training steps, from `vae-tf study` directories trained
at different budgets (docs/guides/disentanglement.md, "A reduced study").

Each finished run of each study (STUDY/runs/MODEL-OPTION-VALUE-seedS; a study still
running is read as far as it got) is scored again with `vae_tf.runs.disentanglement.evaluate_run`
at the sample sizes below (cached in STUDY/rescored/NAME.json), its budget in training steps
read from its config (epochs x ceil(--limit / --batch-size)). Writes a CSV of every run's
scores, the figure (each metric against steps, a line per model: mean over seeds, band of
± one standard deviation, a dot per run) and prints a Markdown table (mean ± sd per model
and budget); with --boxes, box plots at one budget.

Usage: python scripts/study_curve.py STUDY [STUDY ...] --out curve.png [--boxes boxes.png [--boxes-steps N]]
       [--csv curve.csv]
"""

import argparse
import csv
import json
import math
import pathlib

import numpy as np

from vae_tf.analysis.plots import save_figure
from vae_tf.analysis.study_figures import metric_boxes, metric_curves
from vae_tf.config import read_config
from vae_tf.runs.disentanglement import evaluate_run
from vae_tf.runs.run import read_metrics
from vae_tf.runtime.files import write_json

METRICS = ("mig", "factor_vae")
# MIG at disentanglement_lib's 10,000 points; the FactorVAE score at 2,000 points for the
# variances and 300 / 200 votes (the paper's: 10,000 and 10,000 / 5,000), ~35 s a run here.
SAMPLES = {"mig": 10_000, "factor_vae_variance": 2_000, "factor_vae_train": 300, "factor_vae_eval": 200}


def steps_of(run_dir):
    """Training steps of a run: epochs x batches per epoch of its --limit images."""
    config = read_config(run_dir)
    if config.data.limit is None:
        raise ValueError(f"{run_dir}: trained without --limit; this script reads the budget from it")
    return config.training.epochs * math.ceil(config.data.limit / config.data.batch_size)


def scores_of(run_dir, cache, seed):
    """The run's summary scores at `SAMPLES`, computed once and cached in `cache`."""
    wanted = {"samples": SAMPLES, "metrics": list(METRICS), "seed": seed}
    if cache.is_file():
        kept = json.loads(cache.read_text())
        if {key: kept.get(key) for key in wanted} == wanted:
            return kept["summary"]
    summary = evaluate_run(run_dir, seed=seed, samples=SAMPLES, metrics=list(METRICS))["summary"]
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json(cache, {**wanted, "summary": summary})  # atomic: a stopped rescoring leaves no torn cache
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=pathlib.Path, help="study directories")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="the PNG to write")
    parser.add_argument("--boxes", type=pathlib.Path, default=None,
                        help="a PNG of box plots of the scores at one budget, a box per model")
    parser.add_argument("--boxes-steps", type=int, default=None,
                        help="the budget of the box plots, in steps (default: the largest)")
    parser.add_argument("--csv", type=pathlib.Path, default=None, help="a CSV of every run's scores")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scores' draws (default: %(default)s)")
    args = parser.parse_args()
    for study in args.studies:
        if not (study / "runs").is_dir():
            parser.error(f"{study} is not a study directory: it has no runs/ (made by `vae-tf study`)")
    rows = []
    for study in args.studies:
        for run_dir in sorted((study / "runs").iterdir()):
            if run_dir.suffix == ".partial" or not (run_dir / "metrics.json").is_file():
                continue  # not finished (yet)
            model, option, rest = run_dir.name.split("-", 2)  # MODEL-OPTION-VALUE-seedS
            value, seed = rest.rsplit("-seed", 1)
            summary = scores_of(run_dir, study / "rescored" / f"{run_dir.name}.json", args.seed)
            rows.append({"study": study.name, "steps": steps_of(run_dir), "model": model, "option": option,
                         "value": value, "seed": seed,
                         "reconstruction": read_metrics(run_dir / "metrics.json")["reconstruction"], **summary})
            print(f"{study.name}/{run_dir.name}: {summary}", flush=True)
    # A model swept at several values is a line per value: "vae beta=4".
    values = {}
    for row in rows:
        values.setdefault(row["model"], set()).add(row["value"])
    for row in rows:
        row["label"] = row["model"] + (f" {row['option']}={row['value']}" if len(values[row["model"]]) > 1 else "")
    curves = {metric: {} for metric in METRICS}
    for row in rows:
        for metric in METRICS:
            curves[metric].setdefault(row["label"], {}).setdefault(row["steps"], []).append(row[metric])
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        header = ["study", "steps", "label", "model", "option", "value", "seed", "reconstruction", *METRICS]
        with open(args.csv, "w", newline="") as file:
            writer = csv.DictWriter(file, header, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    print("\n| model | steps | runs | " + " | ".join(METRICS) + " | reconstruction |\n|---|---|---|"
          + "---|" * (len(METRICS) + 1))
    for label in curves[METRICS[0]]:
        for steps in sorted(curves[METRICS[0]][label]):
            chosen = [row for row in rows if row["label"] == label and row["steps"] == steps]
            cells = [_mean_sd([row[metric] for row in chosen], 3) for metric in (*METRICS,)]
            recon = _mean_sd([row["reconstruction"] for row in chosen], 1)
            print(f"| {label} | {steps} | {len(chosen)} | " + " | ".join(cells) + f" | {recon} |")
    save_figure(metric_curves(curves, title="mean ± sd over seeds; a dot per run"), args.out)
    if args.boxes:
        last = args.boxes_steps or max(row["steps"] for row in rows)
        labels = list(dict.fromkeys(row["label"] for row in rows if row["steps"] == last))
        if not labels:
            parser.error(f"--boxes-steps {last}: no run has that budget; the budgets are "
                         f"{sorted({row['steps'] for row in rows})}")
        boxes = {metric: {label: curves[metric][label].get(last, []) for label in labels} for metric in METRICS}
        save_figure(metric_boxes(boxes, labels, title=f"{last} training steps"), args.boxes)
        print(f"wrote {args.boxes}")
    print(f"wrote {args.out}")


def _mean_sd(values, digits):
    values = np.asarray(values, "float64")
    if not len(values):
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


if __name__ == "__main__":
    main()
