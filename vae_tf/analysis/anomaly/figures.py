"""Figures comparing anomaly scores of normal and anomalous data: ROC curves and
histograms (matplotlib's object API; `vae_tf.analysis.plots.save_figure` writes them)."""

import numpy as np
from matplotlib.figure import Figure

from vae_tf.analysis.anomaly.roc import roc_curve, roc_report


def ood_roc(in_scores, out_scores, in_name="in-distribution", out_name="out-of-distribution"):
    """ROC curves of several anomaly scores on one figure, AUROC in the legend.

    Args:
        in_scores: dict {score name: 1-D array} of in-distribution (normal) data.
        out_scores: dict with the same keys, of out-of-distribution data (positives).
        in_name: str. What the normal data is, for the title. Defaults to "in-distribution".
        out_name: str. What the anomalous data is. Defaults to "out-of-distribution".

    Returns:
        A `Figure`.

    Example (with `score` and `vae_tf.analysis.plots.save_figure`)::

        save_figure(ood_roc(score(model, fashion), score(model, digits), "Fashion-MNIST", "MNIST"),
                    "plots/ood_roc.png")
    """
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.add_subplot()
    for name in in_scores:
        fpr, tpr = roc_curve(in_scores[name], out_scores[name])
        auroc = roc_report(in_scores[name], out_scores[name])["auroc"]
        ax.plot(fpr, tpr, label=f"{name} (AUROC {auroc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (AUROC 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(f"false positive rate ({in_name} flagged)")
    ax.set_ylabel(f"true positive rate ({out_name} flagged)")
    ax.set_title(f"Anomaly scores, {out_name} vs {in_name}")
    ax.legend(loc="lower right")
    return fig


def ood_histograms(in_scores, out_scores, in_name="in-distribution", out_name="out-of-distribution"):
    """One histogram panel per anomaly score: in-distribution and out-of-distribution overlaid.

    Args:
        in_scores: dict {score name: 1-D array} of in-distribution (normal) data.
        out_scores: dict with the same keys, of out-of-distribution data.
        in_name: str. Legend name of the normal data. Defaults to "in-distribution".
        out_name: str. Legend name of the anomalous data. Defaults to "out-of-distribution".

    Returns:
        A `Figure` with one panel per score.
    """
    names = list(in_scores)
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig = Figure(figsize=(4.5 * columns, 3.8 * rows), layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, columns, i + 1)
        both = np.concatenate([in_scores[name], out_scores[name]])
        low, high = np.percentile(both, [0.5, 99.5])  # a few extreme scores would squash the rest
        bins = np.linspace(low, high, 60) if high > low else 10
        ax.hist(in_scores[name], bins=bins, alpha=0.6, label=in_name, density=True)
        ax.hist(out_scores[name], bins=bins, alpha=0.6, label=out_name, density=True)
        ax.set_title(name)
        ax.set_xlabel("score, nats (higher = more anomalous)")
        ax.set_ylabel("density")
        ax.legend()
    fig.suptitle(f"Anomaly scores of {in_name} and {out_name}")
    return fig
