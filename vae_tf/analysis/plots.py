"""Figures of a trained model, drawn with matplotlib's object API (no pyplot, no
display): each function returns a `Figure`; `save_figure` writes it as PNG."""

import pathlib
import statistics

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from vae_tf.analysis.anomaly.figures import ood_histograms, ood_roc  # noqa: F401  (figures of a run's scores)
from vae_tf.analysis.evaluation import model_labels

LEGEND_CLASSES = 20  # more classes than this get a colour bar: a legend would not fit


def image_grid(images, columns):
    """Tiles images (N, H, W, C) into one (rows * H, columns * W, C) array, 1-px gaps."""
    images = np.clip(np.asarray(images, "float32"), 0.0, 1.0)
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1, c), "float32")
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * (h + 1) : r * (h + 1) + h, col * (w + 1) : col * (w + 1) + w] = image
    return grid


def _show(ax, grid):
    if grid.shape[-1] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(grid)
    ax.set_xticks([])
    ax.set_yticks([])


def image_figure(grid, title, xlabel, ylabel, width=8.0):
    """A figure showing one `image_grid` with a title and axis labels."""
    height = width * grid.shape[0] / grid.shape[1]
    fig = Figure(figsize=(width, max(height, 1.5) + 0.8), layout="constrained")
    ax = fig.add_subplot()
    _show(ax, grid)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def save_figure(fig, path):
    """Writes `fig` as PNG to `path` (parents created) and returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def reconstructions(model, images, labels=None, count=10):
    """Originals (top row) above their reconstructions (bottom row)."""
    images = np.asarray(images[:count], "float32")
    labels = None if labels is None else labels[:count]
    rebuilt = np.asarray(model.reconstruct(images, model_labels(model, labels)))
    return image_figure(
        image_grid(np.concatenate([images, rebuilt]), columns=len(images)),
        "Reconstructions: originals (top) and reconstructions (bottom)",
        "test example",
        "reconstruction    original",
    )


def samples(model, rows=8, columns=8, seed=0, latent_sampler=None):
    """A rows x columns grid of images decoded from prior draws, or from `latent_sampler`'s."""
    classes = model.sample_classes  # a conditional model: classes in turn
    labels = None if classes is None else np.arange(rows * columns, dtype="int32") % classes
    drawn = np.asarray(model.sample(rows * columns, labels=labels, seed=seed, latent_sampler=latent_sampler))
    source = "the prior" if latent_sampler is None else "the fitted latent mixture"
    return image_figure(
        image_grid(drawn, columns), f"{rows * columns} samples from {source}", "sample", "sample"
    )


def _pca_2d(z):
    centered = z - z.mean(axis=0)
    _, _, components = np.linalg.svd(centered, full_matrices=False)
    return centered @ components[:2].T


def _class_names(class_names, count, needed_by):
    """Names for labels 0 .. count - 1: `class_names`, or the numbers when None."""
    if class_names is None:
        return [str(k) for k in range(count)]
    if len(class_names) < count:
        raise ValueError(
            f"class_names has {len(class_names)} names but {needed_by} needs {count} "
            f"(labels 0 to {count - 1})"
        )
    return [str(name) for name in class_names]


def latent_scatter(z, labels=None, class_names=None):
    """Test-set latent means coloured by label; PCA to 2-D above 2 dimensions.

    Up to `LEGEND_CLASSES` classes get a legend that names each one, more a colour bar.

    Args:
        z: array (N, D). Latent means.
        labels: array (N,) of int or None. Class labels in [0, len(class_names)).
        class_names: sequence of str or None. The name of each label; None shows the
            numbers. Defaults to None.

    Returns:
        A `Figure`.

    Example:

    >>> fig = latent_scatter(z, labels, class_names=splits.class_names)
    """
    z = np.asarray(z)
    labels = None if labels is None else np.asarray(labels)
    classes = None if labels is None else np.unique(labels)
    legend = classes is not None and len(classes) <= LEGEND_CLASSES
    fig = Figure(figsize=(8.5 if legend else 7, 6), layout="constrained")
    ax = fig.add_subplot()
    if z.shape[1] > 2:
        points, title = _pca_2d(z), f"Latent means ({z.shape[1]}-D, PCA to 2-D)"
        ax.set_xlabel("principal component 1")
        ax.set_ylabel("principal component 2")
    else:
        points = z if z.shape[1] == 2 else np.column_stack([z[:, 0], np.zeros(len(z))])
        title = "Latent means"
        ax.set_xlabel("z[0]")
        ax.set_ylabel("z[1]" if z.shape[1] == 2 else "")
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.7)
    elif legend:
        names = _class_names(class_names, int(classes.max()) + 1, "the latent scatter")
        colours = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, k in enumerate(classes):
            at = labels == k
            name = names[k] if k >= 0 else "no label"
            ax.scatter(points[at, 0], points[at, 1], s=4, alpha=0.7, color=colours(i), label=name)
        fig.legend(loc="outside right upper", title="class", markerscale=3)
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, s=4, cmap="viridis", alpha=0.7)
        fig.colorbar(scatter, ax=ax, label="class")
    ax.set_title(title)
    return fig


def manifold(model, size=15, label=None):
    """Decodes a size x size grid over a 2-D latent, spaced by Normal quantiles."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold plot needs latent_dim 2, got {model.latent_dim}")
    normal = statistics.NormalDist()
    values = [normal.inv_cdf(p) for p in np.linspace(0.05, 0.95, size)]
    z = np.array([[x, y] for y in reversed(values) for x in values], "float32")
    labels = None if label is None else np.full(len(z), label, "int32")
    grid = image_grid(np.asarray(model.decode(z, labels)), columns=size)
    fig = image_figure(grid, "Latent manifold (Normal quantiles 0.05 to 0.95)", "z[0]", "z[1]")
    ax = fig.axes[0]
    step = grid.shape[1] / size
    ticks = [step * (i + 0.5) for i in (0, size // 2, size - 1)]
    ax.set_xticks(ticks, [f"{values[i]:.1f}" for i in (0, size // 2, size - 1)])
    ax.set_yticks(ticks, [f"{values[i]:.1f}" for i in (size - 1, size // 2, 0)])
    return fig


def interpolations(model, images, labels=None, pairs=4, steps=10):
    """One row per pair of test images: the decoded line between their codes."""
    rows = []
    for i in range(pairs):
        a, b = 2 * i, 2 * i + 1
        label = None if not model.is_conditional else int(model_labels(model, labels)[a])
        rows.append(np.asarray(model.interpolate(images[a], images[b], steps, label)))
    return image_figure(
        image_grid(np.concatenate(rows), columns=steps),
        "Interpolations between pairs of test images",
        "step from first image to second",
        "pair",
    )


def class_grid(model, per_class=10, seed=0, class_names=None):
    """CVAE: one row per class, each decoded from the same prior draws.

    Args:
        model: CVAE.
        per_class: int. Images per row. Defaults to 10.
        seed: int. Seed of the shared prior draws. Defaults to 0.
        class_names: sequence of str or None. Row names, one per class; None shows the
            class numbers. Defaults to None.

    Returns:
        A `Figure`.
    """
    names = _class_names(class_names, model.num_classes, "the class grid")
    z = np.random.default_rng(seed).standard_normal((per_class, model.latent_dim)).astype("float32")
    decoded = [
        np.asarray(model.decode(z, np.full(per_class, k, "int32"))) for k in range(model.num_classes)
    ]
    fig = image_figure(
        image_grid(np.concatenate(decoded), columns=per_class),
        "Class-conditional samples (one row per class, shared z per column)",
        "prior draw",
        "class",
    )
    row_height = decoded[0].shape[1] + 1  # image_grid's 1-px gap
    centres = [row_height * k + (row_height - 1) / 2 for k in range(model.num_classes)]
    fig.axes[0].set_yticks(centres, names[: model.num_classes])
    return fig


def training_curves(history):
    """Loss, reconstruction and KL per epoch, train and validation."""
    terms = [t for t in ("loss", "reconstruction", "kl") if t in history]
    fig = Figure(figsize=(4.5 * len(terms), 4), layout="constrained")
    for i, term in enumerate(terms):
        ax = fig.add_subplot(1, len(terms), i + 1)
        epochs = np.arange(1, len(history[term]) + 1)
        ax.plot(epochs, history[term], marker="o", label="train")
        if f"val_{term}" in history:
            ax.plot(epochs, history[f"val_{term}"], marker="o", label="validation")
        ax.set_title(term)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.legend()
    fig.suptitle("Training curves")
    return fig


def learning_curves(curves, references=None):
    """Test negative log-likelihood against passes over the training set, one line per
    run, the passes on a log scale (the IWAE paper's stages are 3^i passes long).

    Args:
        curves: dict. Run name -> (passes, nats): the epochs and -log p(x) of its
            learning curve (`vae_tf.runs.run.read_curve`).
        references: dict or None. Label -> nats, drawn as dashed horizontal lines (a
            paper's figures). Defaults to None.

    Returns:
        A `Figure`.

    Example:

    >>> fig = learning_curves({"vae": ([1, 4, 13], [177.0, 120.5, 104.0])}, {"paper VAE": 86.76})
    """
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, (passes, nats) in curves.items():
        ax.plot(passes, nats, marker="o", label=name)
    for i, (label, nats) in enumerate((references or {}).items()):
        ax.axhline(nats, linestyle="--", linewidth=1, color=f"C{len(curves) + i}", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("passes over the training set")
    ax.set_ylabel("test -log p(x), nats")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def save_all(model, images, labels, history, out_dir, z=None, class_names=None, latent_sampler=None):
    """Draws every plot that applies to `model` into `out_dir`; returns the paths.

    Args:
        model: AE, VAE or CVAE (any model with an encoder also gets `traversals`). A
            model of a table's records (`model.input_name == "features"`) gets the latent
            scatter and the training curves only.
        images: array. Held-out images (at least 10).
        labels: array or None. Their labels.
        history: dict of per-epoch lists (`History.history`), or None to skip curves.
        out_dir: str or Path. Destination folder.
        z: array or None. Latent means of held-out data for the scatter plot.
        class_names: sequence of str or None. The name of each label, for the scatter
            plot and the class grid; None shows the numbers. Defaults to None.
        latent_sampler: object or None. A fitted latent sampler (`vae_tf.analysis.samplers`);
            adds its samples as "samples_gmm". Defaults to None.
    """
    out_dir = pathlib.Path(out_dir)
    if model.input_name != "images":  # records of a table: no image grids
        figures = {}
        if z is not None:
            figures["latent_scatter"] = latent_scatter(z, labels, class_names)
        if history:
            figures["training_curves"] = training_curves(history)
        return [save_figure(fig, out_dir / f"{name}.png") for name, fig in figures.items()]
    figures = {"reconstructions": reconstructions(model, images, labels)}
    if model.has_latent_vector:
        figures["interpolations"] = interpolations(model, images, labels, pairs=min(4, len(images) // 2))
    if model.can_sample:
        figures["samples"] = samples(model)
        if model.has_latent_vector and model.latent_dim == 2:
            figures["manifold"] = manifold(model, label=0 if model.is_conditional else None)
    if latent_sampler is not None and not model.is_conditional:
        figures["samples_gmm"] = samples(model, latent_sampler=latent_sampler)
    if model.is_conditional:
        figures["class_grid"] = class_grid(model, class_names=class_names)
    if z is not None:
        one_label_each = labels is not None and np.ndim(labels) == 1 and len(labels) == len(z)
        figures["latent_scatter"] = latent_scatter(z, labels if one_label_each else None, class_names)
    if model.has_latent_vector and len(images) >= 3:
        figures["traversals"] = traversals(model, images, labels)
    if history:
        figures["training_curves"] = training_curves(history)
    return [save_figure(fig, out_dir / f"{name}.png") for name, fig in figures.items()]


def _posterior(model, images, labels):
    """(latent means, log-variances of q(z|x), or None for a deterministic encoder) for
    the traversals."""
    labels = model_labels(model, labels)
    log_vars = model.code_log_var(images, labels)
    return np.asarray(model.mean_code(images, labels)), None if log_vars is None else np.asarray(log_vars)


def traversals(model, images, labels=None, seeds=3, steps=9, span=3.0):
    """Latent traversals: each dimension swept around the codes of a few seed images.

    One panel per seed image, one row per latent dimension, `steps` columns from
    -`span` to +`span` standard deviations added to that dimension of the seed's code
    (the others kept). For a variational model, rows are sorted by the dimension's
    average KL(q(z_j|x) || N(0, 1)) over `images`, labelled in nats, and sigma is the
    prior's (1); for a deterministic encoder, sigma is the dimension's standard
    deviation over `images` and rows keep their order.

    Args:
        model: a model with `encode` and `decode`.
        images: array (N, H, W, C). The first `seeds` are the seed images; all of them
            give the KL averages (and the AE standard deviations).
        labels: array or None. Their labels (CVAE only).
        seeds: int. Seed images, >= 1. Defaults to 3.
        steps: int. Columns per row, >= 2. Defaults to 9.
        span: float. Sweep half-width in standard deviations. Defaults to 3.0.

    Returns:
        A matplotlib `Figure`.

    Example:

    >>> save_figure(traversals(model, test_images), "traversals.png")
    """
    images = np.asarray(images, "float32")
    if not isinstance(seeds, int) or not 1 <= seeds <= len(images):
        raise ValueError(f"seeds must be an integer in [1, {len(images)}] (number of images), got {seeds}")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span}")
    from vae_tf.core.layers import gaussian_kl  # imported here to keep this addition self-contained

    means, log_vars = _posterior(model, images, labels)
    if log_vars is not None:
        kl = np.asarray(gaussian_kl(means, np.asarray(log_vars))).mean(axis=0)
        order, sigma = np.argsort(-kl), np.ones(means.shape[1], "float32")
        names = [f"z[{j}]  KL {kl[j]:.2f} nats" for j in order]
    else:
        order, sigma = np.arange(means.shape[1]), means.std(axis=0)
        names = [f"z[{j}]" for j in order]
    offsets = np.linspace(-span, span, steps, dtype="float32")
    fig = Figure(figsize=(3.2 * seeds + 1.5, 0.4 * len(order) + 1.2), layout="constrained")
    for s in range(seeds):
        z = np.repeat(means[s : s + 1], len(order) * steps, axis=0).reshape(len(order), steps, -1)
        for row, j in enumerate(order):
            z[row, :, j] += offsets * sigma[j]
        seed_labels = None if labels is None else np.repeat(np.asarray(labels)[s : s + 1], z.shape[0] * steps, axis=0)
        decoded = np.asarray(model.decode(z.reshape(-1, means.shape[1]).astype("float32"),
                                          model_labels(model, seed_labels)))
        grid = image_grid(decoded, columns=steps)
        ax = fig.add_subplot(1, seeds, s + 1)
        _show(ax, grid)
        height, width = grid.shape[0] / len(order), grid.shape[1] / steps
        ax.set_yticks([height * (r + 0.5) for r in range(len(order))], names if s == 0 else [])
        ax.set_xticks([width * 0.5, width * (steps / 2), width * (steps - 0.5)],
                      [f"-{span:g}σ", "0", f"+{span:g}σ"])
        ax.set_title(f"seed image {s}")
    fig.suptitle("Latent traversals" + (" (rows sorted by KL)" if log_vars is not None else ""))
    return fig
