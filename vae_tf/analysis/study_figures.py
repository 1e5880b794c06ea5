"""The figures of a disentanglement study: box plots (one panel per metric, one box per
model) and curves of each metric against training steps.

The layout of Locatello et al. (2019), "Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations" (ICML), figure 2 and appendix:
each box gathers a model's runs over its hyperparameter values and seeds. Drawn with
matplotlib's object API (no pyplot); `vae_tf.analysis.plots.save_figure` writes it.
"""

import math

import numpy as np
from matplotlib.figure import Figure

PANEL_COLUMNS = 3


def metric_boxes(values, models, title=None):
    """Box plots of each metric per model, every run a dot over its model's box.

    Args:
        values: dict. {metric: {model: [the metric of each of its runs]}}; a model
            without runs of a metric gets an empty slot.
        models: sequence of str. The models, in the order of the boxes.
        title: str or None. The figure's title. Defaults to None.

    Returns:
        A matplotlib `Figure`.

    Example:

    >>> fig = metric_boxes({"mig": {"vae": [0.1, 0.2], "tcvae": [0.3]}}, ["vae", "tcvae"])
    """
    if not values:
        raise ValueError("values must hold at least one metric, got none")
    columns = min(PANEL_COLUMNS, len(values))
    rows = math.ceil(len(values) / columns)
    width = max(4.0, 0.8 * len(models) + 1.5)
    fig = Figure(figsize=(width * columns, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (metric, per_model) in zip(axes, values.items()):
        data = [np.asarray(per_model.get(model, ()), "float64") for model in models]
        data = [d[np.isfinite(d)] for d in data]
        ax.boxplot(data, tick_labels=list(models), showfliers=False)
        for position, points in enumerate(data, start=1):
            jitter = np.random.default_rng(position).uniform(-0.12, 0.12, len(points))  # fixed: the same figure
            ax.plot(position + jitter, points, ".", color="tab:blue", alpha=0.6)
        ax.set_title(metric)
        ax.tick_params(axis="x", labelrotation=30)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(values):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def metric_curves(curves, title=None):
    """Each metric against training steps, a line per model: the mean over seeds with a
    band of ± one standard deviation, every run a dot.

    Args:
        curves: dict. {metric: {model: {steps: [the metric of each seed's run]}}}.
        title: str or None. The figure's title. Defaults to None.

    Returns:
        A matplotlib `Figure`, one panel per metric.

    Example:

    >>> fig = metric_curves({"mig": {"vae": {250: [0.1, 0.2], 500: [0.2, 0.3]}}})
    """
    if not curves:
        raise ValueError("curves must hold at least one metric, got none")
    fig = Figure(figsize=(5.0 * len(curves), 3.6), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False).ravel()
    for ax, (metric, per_model) in zip(axes, curves.items()):
        for index, (model, points) in enumerate(per_model.items()):
            color = f"C{index}"
            steps = sorted(points)
            runs = [np.asarray(points[s], "float64") for s in steps]
            means = np.array([r.mean() for r in runs])
            spread = np.array([r.std(ddof=1) if len(r) > 1 else 0.0 for r in runs])
            ax.plot(steps, means, "-", marker="o", color=color, label=model)
            ax.fill_between(steps, means - spread, means + spread, color=color, alpha=0.15)
            for position, values in zip(steps, runs):
                ax.plot(np.full(len(values), position), values, ".", color=color, alpha=0.5)
        ax.set_title(metric)
        ax.set_xlabel("training steps")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize="small", loc="best")
    if title:
        fig.suptitle(title)
    return fig
