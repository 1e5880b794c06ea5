"""Anomaly and out-of-distribution scores on new data, thresholds, and ROC figures of merit.

Every score is per example, in nats, and oriented so that **higher means more
anomalous**. Raw likelihoods (`neg_elbo`, `iw_nll`) fail on the textbook
out-of-distribution case: a VAE trained on Fashion-MNIST gives MNIST digits *higher*
likelihood, because simple images are likely under any model of images (Nalisnick et
al. 2019, "Do deep generative models know what they don't know?"). `complexity` and
`regret` correct for that without any outside data; `regret` is the more robust of the
two (see `score`).

Example (the docstring examples below run as they are; `tests/test_anomaly.py` runs them):

    normal = anomaly.score(model, validation_images)     # {score name: array}
    record = anomaly.calibrate(normal["complexity"], fpr=0.01, name="complexity")
    flags = anomaly.is_anomaly(anomaly.score(model, new_images), record)
    anomaly.roc_report(normal["complexity"], anomaly.score(model, odd_images)["complexity"])
"""

import json
import math
import pathlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from vae_tf.analysis.evaluation import IW_SAMPLES, batch_graph, log_likelihood_graph
from vae_tf.core.layers import clamp_log_var

METHODS = ("neg_elbo", "iw_nll", "reconstruction", "complexity", "regret")
_VARIATIONAL_ONLY = ("neg_elbo", "iw_nll", "regret")
_LN2 = math.log(2.0)
# `score`'s regret settings, stored with a calibration so an export recomputes the same score.
REGRET_OPTIONS = {"regret_steps": 20, "regret_draws": 4, "regret_learning_rate": 0.1}
FPR = 0.01  # `calibrate`'s share of normal inputs flagged


_IMAGE_ONLY = ("complexity",)  # a PNG code length needs an 8-bit image


def available_methods(model):
    """The score names `model` supports: all of `METHODS` for a VAE/CVAE; an AE has no
    latent distribution, so only `reconstruction` and `complexity`. A model of a table's
    records (`model.input_name == "features"`) has no `complexity` (it compresses images)."""
    methods = METHODS if model.is_variational else tuple(m for m in METHODS if m not in _VARIATIONAL_ONLY)
    if model.input_name != "images":
        methods = tuple(m for m in methods if m not in _IMAGE_ONLY)
    return methods


# --- inputs -----------------------------------------------------------------------


def _check_records(records, expected, where):
    """One batch of a table's records as float32 (n, F), raw units: no range, no rescaling."""
    records = np.asarray(records)
    if records.shape[1:] != tuple(expected):
        raise ValueError(f"{where} have shape {records.shape[1:]} per record, but the model expects "
                         f"{tuple(expected)}")
    if records.dtype.kind not in "iuf":
        raise ValueError(f"{where} must be numbers, got dtype {records.dtype}")
    records = records.astype("float32")
    if not np.isfinite(records).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(records))[0])
        raise ValueError(f"{where} contain NaN or infinite values (first at record {row}, feature {column})")
    return records


def _check_batch(images, expected, where):
    """One batch as float32 in [0, 1], shaped (n, *expected); uint8 is divided by 255."""
    if len(expected) == 1:
        return _check_records(images, expected, where)
    images = np.asarray(images)
    if images.ndim == len(expected) and expected[-1] == 1:
        images = images[..., None]  # (n, H, W) grey images: add the channel axis
    if images.shape[1:] != tuple(expected):
        raise ValueError(
            f"{where} have shape {images.shape[1:]} per example, but the model expects "
            f"{tuple(expected)}"
        )
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise ValueError(f"{where} must be numbers, got dtype {images.dtype}")
    images = images.astype("float32")
    if not np.isfinite(images).all():
        raise ValueError(f"{where} contain NaN or infinite pixels")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(
            f"{where} must be floats in [0, 1] or uint8 in 0-255, got values in "
            f"[{images.min():g}, {images.max():g}]"
        )
    return images


def as_arrays(model, data, labels=None):
    """Checks `data` and returns (images float32 in [0, 1], labels or None) as numpy arrays.

    Args:
        model: AE, VAE or CVAE. Gives the expected image shape.
        data: array or tf.data.Dataset. Images (n, H, W, C) or (n, H, W) for one channel,
            floats in [0, 1] or uint8 0-255; or a dataset of image batches, of
            (images, labels) batches, or of single images. For a model of a table's
            records: records (n, F) of numbers in raw units (not rescaled).
        labels: array or None. Class ids for an array `data` (CVAE). Defaults to None.

    Returns:
        (images, labels): float32 array of shape (n, *model.image_shape), and int32
        labels or None.

    Raises:
        ValueError: empty data, NaN or infinite pixels, values outside the range, or
            images of another shape than the model's (both shapes named).
    """
    expected, what = tuple(model.image_shape), model.input_name
    if isinstance(data, tf.data.Dataset):
        element = data.element_spec
        images_spec = element[0] if isinstance(element, (tuple, list)) else element
        single_shapes = {expected, expected[:-1]} if expected[-1] == 1 and len(expected) > 1 else {expected}
        if tuple(images_spec.shape) in single_shapes:  # single images: batch them
            data = data.batch(256)
        batches, all_labels = [], []
        for batch in data:
            if isinstance(batch, (tuple, list)):
                batch, batch_labels = batch[0], batch[1]
                all_labels.append(np.asarray(batch_labels))
            batches.append(_check_batch(np.asarray(batch), expected, what))
        images = np.concatenate(batches) if batches else np.zeros((0, *expected), "float32")
        if all_labels and labels is None:
            labels = np.concatenate(all_labels)
    else:
        images = np.asarray(data)
        if images.ndim < 2:
            raise ValueError(
                f"images must be an array (n, {', '.join(map(str, expected))}), got shape "
                f"{images.shape}"
            )
        images = _check_batch(images, expected, what)
    if len(images) == 0:
        raise ValueError("images are empty: nothing to score")
    if labels is not None:
        labels = np.asarray(labels).astype("int32").reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    return images, labels


def _batches(images, labels, batch_size):
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        yield (
            tf.constant(images[start:stop]),
            None if labels is None else tf.constant(labels[start:stop]),
        )


# --- per-example quantities the model should eventually provide --------------------


@tf.function(reduce_retracing=True, autograph=False)
def png_nats(images):
    """Code length of each image as an 8-bit PNG (zlib level 9), in nats.

    The input-complexity estimate L(x) of Serra et al. (2020): the length of a lossless
    compression of x, here PNG as in the paper, times 8 ln 2 nats per byte. Made of
    TensorFlow ops (`tf.io.encode_png`), so it also runs inside a `tf.function` or an
    exported SavedModel signature and gives the same lengths there (a `tf.function`
    itself, so eager calls are not slowed by `tf.map_fn`).

    Args:
        images: array or tensor (n, H, W, C), C 1, 3 or 4, floats in [0, 1]. Quantized
            to 0-255 by rounding.

    Returns:
        A float32 tensor of n code lengths in nats.
    """
    pixels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)
    lengths = tf.map_fn(
        lambda image: tf.strings.length(tf.io.encode_png(image, compression=9)),
        pixels,
        fn_output_signature=tf.int32,
    )
    return tf.cast(lengths, tf.float32) * (8.0 * _LN2)


def reconstruction_nll(model, x, labels=None):
    """-log p(x | decoder(code)) per example, at the model's deterministic code
    (`model.code_name`: z of an AE, z_mean of a VAE)."""
    if not model.is_variational:
        # Deterministic models train on this very term; a VQ-VAE's codes are not the
        # decoder's input (their codebook vectors are), so ask the model.
        return model.per_example_terms(x, labels)["reconstruction"]
    code = model.encode(x, labels)[model.code_name]
    params = model.decoder(model.network_inputs(code, labels), training=False)
    return model.likelihood.negative_log_likelihood(x, params)


def _regret_terms(model, x, labels, eps, steps, learning_rate):
    """(-ELBO with the encoder's q(z|x), -ELBO with q(z|x) fitted to x alone), per example.

    Likelihood regret (Xiao et al. 2020): how much the ELBO of x improves when the
    posterior is optimized for x alone. The paper re-trains the encoder per example; we
    optimize the posterior parameters (z_mean, z_log_var) of each example directly, with
    Adam on the same fixed noise draws `eps` (shape (draws, 1 or batch, latent)), so
    that all examples of a batch are optimized at once and the two ELBOs share their
    noise. The KL term is the model's own (`model.prior.kl`): analytic for N(0, I), a
    Monte-Carlo estimate at the draws for a learned prior such as the VampPrior.
    """

    def neg_elbo(z_mean, z_log_var):
        log_var = clamp_log_var(z_log_var)
        z = z_mean[None] + ops.exp(0.5 * log_var)[None] * eps  # (draws, batch, latent)
        draws = ops.shape(z)[0]
        flat = ops.reshape(z, (-1, ops.shape(z)[-1]))
        flat_labels = None if labels is None else ops.tile(labels, (draws,))
        params = model.decoder(model.network_inputs(flat, flat_labels), training=False)
        tiled = ops.tile(x, (draws,) + (1,) * (len(x.shape) - 1))
        nll = ops.reshape(model.likelihood.negative_log_likelihood(tiled, params), (draws, -1))
        # (batch,) for an analytic KL, (draws, batch) for a Monte-Carlo one: both broadcast.
        kl = model.prior.kl(z_mean[None], log_var[None], z)
        return ops.mean(nll + kl, axis=0)

    codes = model.encode(x, labels)
    z_mean, z_log_var = codes["z_mean"], codes["z_log_var"]
    before = neg_elbo(z_mean, z_log_var)
    latent = ops.shape(z_mean)[-1]

    def fitted_neg_elbo(params):
        return neg_elbo(params[:, :latent], params[:, latent:])

    def adam_step(step, params, moment, square):
        # Adam by hand on tensors: a keras optimizer would need new variables per batch.
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = ops.sum(fitted_neg_elbo(params))
        grad = tape.gradient(loss, params)
        step += 1.0
        moment = 0.9 * moment + 0.1 * grad
        square = 0.999 * square + 0.001 * grad * grad
        update = (moment / (1.0 - 0.9**step)) / (ops.sqrt(square / (1.0 - 0.999**step)) + 1e-8)
        return step, params - learning_rate * update, moment, square

    start = ops.concatenate([z_mean, z_log_var], axis=-1)
    _, fitted, _, _ = tf.while_loop(
        lambda step, *_: step < steps,
        adam_step,
        (tf.constant(0.0), start, ops.zeros_like(start), ops.zeros_like(start)),
    )
    after = fitted_neg_elbo(fitted)
    # The starting point is one candidate: regret is never negative.
    return before, ops.minimum(before, after)


# --- scores -----------------------------------------------------------------------


def check_methods(model, methods):
    supported = available_methods(model)
    if methods is None:
        return supported
    if isinstance(methods, str):
        methods = (methods,)
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown score method {method!r}; choose from {METHODS}")
        if method in _IMAGE_ONLY and model.input_name != "images":
            raise ValueError(
                f"score method {method!r} compresses images as PNG and does not apply to "
                f"records of a table; this model supports {supported}"
            )
        if method not in supported:
            raise ValueError(
                f"score method {method!r} needs a VAE or CVAE (a latent distribution "
                f"q(z|x)); this model supports {supported}"
            )
    return tuple(methods)


def score(
    model,
    data,
    methods=None,
    iw_samples=IW_SAMPLES,
    batch_size=256,
    seed=0,
    labels=None,
    regret_steps=20,
    regret_draws=4,
    regret_learning_rate=0.1,
):
    """Per-example anomaly scores of new data; higher means more anomalous.

    Scores (all nats per example):
    - `neg_elbo`: -ELBO = reconstruction NLL at one draw z ~ q(z|x) + KL(q(z|x) || p(z)).
    - `iw_nll`: importance-weighted estimate of -log p(x) with `iw_samples` draws (the
      IWAE bound; `evaluation.log_likelihoods`).
    - `reconstruction`: -log p(x | decoder(code)) at the deterministic code (z for an
      AE, z_mean for a VAE). The AE's only probabilistic score.
    - `complexity`: input-complexity-corrected likelihood (Serra et al. 2020, "Input
      complexity and out-of-distribution detection with likelihood-based generative
      models", ICLR): S(x) = -log p(x) - L(x), where L(x) is the PNG code length of the
      8-bit image (`png_nats`) and -log p(x) is `iw_nll` (VAE) or `reconstruction` (AE).
      It is a likelihood ratio of the model against a universal compressor: simple
      images, which any model finds likely, are also short in PNG. It flags inputs
      simpler than the training data (MNIST digits under a Fashion-MNIST VAE: AUROC
      0.99) and misses more complex ones (Fashion-MNIST under an MNIST VAE: 0.03).
    - `regret`: likelihood regret (Xiao et al. 2020, "Likelihood Regret: An
      Out-of-Distribution Detection Score for Variational Auto-encoder", NeurIPS):
      -ELBO(x) with the trained encoder minus -ELBO(x) with q(z|x) optimized for x
      alone (`regret_steps` Adam steps on z_mean, z_log_var, `regret_draws` noise draws
      shared by both terms and by every example: stateless, fixed by `seed`, so a
      score does not depend on the batch and an export repeats it). The KL is the
      model's own (`model.prior.kl`). An amortized encoder fits in-distribution data almost as
      well as a per-example fit, and out-of-distribution data much worse. Measured
      AUROC 0.98 in both directions above.

    None needs outside data or auxiliary models: they are computed from the model and
    the images alone.

    Args:
        model: AE, VAE or CVAE.
        data: array or tf.data.Dataset. Images (n, H, W, C) (or (n, H, W), one channel)
            as floats in [0, 1] or uint8 0-255 (divided by 255); or a dataset of image
            batches, (images, labels) batches or single images. See `as_arrays`.
        methods: str, sequence of str or None. Scores to compute; None means all the
            model supports (`available_methods`). Defaults to None.
        iw_samples: int. Importance samples K for `iw_nll` and `complexity`, >= 1.
            Defaults to 100.
        batch_size: int. Examples per batch, >= 1. Defaults to 256.
        seed: int. Seed of every random draw. Defaults to 0.
        labels: array or None. Class ids of an array `data` (CVAE). Defaults to None.
        regret_steps: int. Optimization steps of `regret`, >= 1. Defaults to 20.
        regret_draws: int. Noise draws per example of `regret`, >= 1. Defaults to 4.
        regret_learning_rate: float. Adam step size of `regret`. Defaults to 0.1.

    Returns:
        A dict {method: float64 numpy array of one score per example}, in the order of
        `methods`.

    Raises:
        ValueError: an unknown method, a method the model cannot compute (e.g.
            `iw_nll` on an AE), bad options, or bad images (see `as_arrays`).

    Example:

    >>> import numpy as np, vae_tf
    >>> model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, seed=0)
    >>> images = np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    >>> scores = score(model, images, methods=["neg_elbo", "complexity"], iw_samples=4)
    >>> sorted(scores), scores["complexity"].shape
    (['complexity', 'neg_elbo'], (8,))
    """
    scorer = Scorer(model, methods, iw_samples, batch_size, seed,
                    regret_steps, regret_draws, regret_learning_rate)
    return scorer(data, labels)


class Scorer:
    """The scores of `score`, with each score's graph built once for many calls.

    `score` makes one per call; a command that scores data in chunks keeps one, so
    every chunk reuses the same traced graphs (one trace per graph for any batch size,
    `evaluation.batch_graph`). The random draws of `neg_elbo` and `iw_nll` continue
    from call to call (their seed generators advance); `regret`'s noise is fixed.

    Args: those of `score` from `methods` on, except `data` and `labels`.

    Example:

    >>> import numpy as np, vae_tf
    >>> model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, seed=0)
    >>> scorer = Scorer(model, ["neg_elbo", "regret"], batch_size=64)
    >>> parts = [scorer(np.zeros((n, 28, 28), np.uint8)) for n in (100, 30)]
    >>> [part["regret"].shape for part in parts]
    [(100,), (30,)]
    """

    def __init__(self, model, methods=None, iw_samples=IW_SAMPLES, batch_size=256, seed=0,
                 regret_steps=20, regret_draws=4, regret_learning_rate=0.1):
        self.methods = check_methods(model, methods)
        for name, value in (("iw_samples", iw_samples), ("batch_size", batch_size),
                            ("regret_steps", regret_steps), ("regret_draws", regret_draws)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.model, self.batch_size = model, batch_size
        wanted = set(self.methods)
        # The graphs to run, named by what they compute; __call__ combines them into scores.
        self.graphs = {}
        if "iw_nll" in wanted or ("complexity" in wanted and model.is_variational):
            self.graphs["log_likelihood"] = log_likelihood_graph(model, iw_samples, seed, batch_size)
        if "neg_elbo" in wanted:
            seed_generator = keras.random.SeedGenerator(seed)
            self.graphs["neg_elbo"] = batch_graph(
                model, lambda x, y: model.per_example_terms(x, y, seed=seed_generator)["neg_elbo"]
            )
        if "reconstruction" in wanted or ("complexity" in wanted and not model.is_variational):
            self.graphs["reconstruction"] = batch_graph(
                model, lambda x, y: reconstruction_nll(model, x, y)
            )
        if "complexity" in wanted:
            self.graphs["png"] = batch_graph(model, lambda x, y: png_nats(x))
        if "regret" in wanted:
            self.graphs["regret"] = batch_graph(
                model, regret_graph(model, regret_steps, regret_draws, regret_learning_rate, seed)
            )

    def __call__(self, data, labels=None):
        """{method: float64 numpy array of one score per example} of `data` (see `score`)."""
        images, labels = as_arrays(self.model, data, labels)
        if labels is None and self.model.is_conditional:
            raise ValueError("a conditional model is scored on (images, labels): pass labels")
        labels = labels if self.model.is_conditional else None
        parts = {name: [] for name in self.graphs}
        for x, y in _batches(images, labels, self.batch_size):
            for name, graph in self.graphs.items():
                parts[name].append(np.asarray(graph(x, y)))
        results = {name: np.concatenate(values) for name, values in parts.items()}
        if "log_likelihood" in results:
            results["iw_nll"] = -results["log_likelihood"]
        if "png" in results:
            base = results["iw_nll"] if self.model.is_variational else results["reconstruction"]
            results["complexity"] = base - results["png"]
        return {method: results[method].astype("float64") for method in self.methods}


def regret_noise(model, draws, seed):
    """The noise of `regret`: `draws` standard normal latent draws shared by every example.

    Stateless (a function of `seed` alone), so every batch, and an exported graph, uses
    the same draws: an example's regret does not depend on its batch.
    """
    return tf.random.stateless_normal((draws, 1, model.latent_dim), seed=(seed, 0))


def regret_graph(model, steps, draws, learning_rate, seed):
    """The `regret` score of a batch, (x, labels) -> (batch,), as TensorFlow ops only
    (no Python loop, stateless noise), so it also runs in an exported signature."""

    def regret(x, labels):
        eps = regret_noise(model, draws, seed)
        before, after = _regret_terms(model, x, labels, eps, steps, learning_rate)
        return before - after

    return regret


# --- thresholds -------------------------------------------------------------------


def _check_scores(scores, name="scores"):
    scores = np.asarray(scores, dtype="float64")
    if scores.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-example scores, got shape {scores.shape}")
    if len(scores) == 0:
        raise ValueError(f"{name} are empty")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return scores


def calibrate(scores, fpr=FPR, name="score", options=None):
    """A threshold that flags about `fpr` of normal data, as a serializable record.

    The threshold is the (floor(fpr * n) + 1)-th largest calibration score: at most
    floor(fpr * n) calibration scores lie strictly above it (exactly that many without
    ties), so `is_anomaly` flags that fraction of the calibration data.

    Args:
        scores: 1-D array. Scores of normal (validation) data, higher = more anomalous.
        fpr: float in (0, 1). Fraction of normal data to flag. Defaults to `FPR`.
        name: str. Name of the score, stored in the record. Defaults to "score".
        options: dict or None. The `score` options that made `scores` (e.g.
            regret_steps), stored so an export recomputes the same score. Defaults to None.

    Returns:
        A dict {"score": name, "fpr": fpr, "threshold": float, "num_examples": n}
        (and "options" if given), JSON-serializable.

    Example:

    >>> calibrate([3.0, 1.0, 4.0, 1.5, 9.0, 2.6], fpr=0.2, name="complexity")
    {'score': 'complexity', 'fpr': 0.2, 'threshold': 4.0, 'num_examples': 6}
    >>> is_anomaly([3.0, 5.0, 9.5], 4.0).tolist()
    [False, True, True]
    """
    scores = _check_scores(scores)
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    k = int(math.floor(fpr * len(scores)))
    threshold = float(np.sort(scores)[::-1][k])
    record = {"score": str(name), "fpr": float(fpr), "threshold": threshold, "num_examples": len(scores)}
    return record if options is None else {**record, "options": dict(options)}


def is_anomaly(scores, threshold):
    """Flags scores strictly above a threshold.

    Args:
        scores: 1-D array of scores, or the dict `score` returns (then the record's
            score name picks the entry).
        threshold: float, or a record from `calibrate`.

    Returns:
        A bool numpy array, one flag per example.
    """
    if isinstance(threshold, dict):
        if isinstance(scores, dict):
            if threshold["score"] not in scores:
                raise ValueError(
                    f"the threshold is for score {threshold['score']!r}, which is not among "
                    f"{sorted(scores)}"
                )
            scores = scores[threshold["score"]]
        threshold = threshold["threshold"]
    return _check_scores(scores) > float(threshold)


# --- figures of merit -------------------------------------------------------------


def average_ranks(values):
    """1-based ranks of `values`, ties sharing the mean of their ranks."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values, and each run's mean rank.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run_ranks = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return ranks


def roc_curve(in_scores, out_scores):
    """ROC curve with out-of-distribution as the positive class (flag when score >= t).

    Returns:
        (fpr, tpr): arrays from (0, 0) to (1, 1), one point per distinct score value.
    """
    in_scores = _check_scores(in_scores, "in_scores")
    out_scores = _check_scores(out_scores, "out_scores")
    thresholds = np.unique(np.concatenate([in_scores, out_scores]))[::-1]
    in_sorted, out_sorted = np.sort(in_scores), np.sort(out_scores)
    # Number of scores >= t, for every distinct t (highest first).
    fp = len(in_sorted) - np.searchsorted(in_sorted, thresholds, side="left")
    tp = len(out_sorted) - np.searchsorted(out_sorted, thresholds, side="left")
    fpr = np.r_[0.0, fp / len(in_sorted)]
    tpr = np.r_[0.0, tp / len(out_sorted)]
    return fpr, tpr


def roc_report(in_scores, out_scores):
    """AUROC, AUPRC and FPR at 95% TPR, with out-of-distribution as the positive class.

    - `auroc`: the Mann-Whitney statistic P(out > in) + P(out = in) / 2, from average
      ranks (ties count one half).
    - `auprc`: average precision, sum over distinct thresholds of (recall step) x
      precision, flagging scores >= t.
    - `fpr_at_95_tpr`: fraction of in-distribution scores flagged at the highest
      threshold that flags at least 95% of out-of-distribution scores.

    Args:
        in_scores: 1-D array. Scores of in-distribution (normal) data.
        out_scores: 1-D array. Scores of out-of-distribution (anomalous) data.

    Returns:
        A dict of floats {"auroc", "auprc", "fpr_at_95_tpr"}.

    Example:

    >>> roc_report([0.1, 0.2, 0.3], [0.25, 0.4])
    {'auroc': 0.8333333333333334, 'auprc': 0.8333333333333333, 'fpr_at_95_tpr': 0.3333333333333333}
    """
    in_scores = _check_scores(in_scores, "in_scores")
    out_scores = _check_scores(out_scores, "out_scores")
    n_in, n_out = len(in_scores), len(out_scores)
    ranks = average_ranks(np.concatenate([in_scores, out_scores]))
    auroc = (ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0) / (n_in * n_out)
    fpr, tpr = roc_curve(in_scores, out_scores)
    fp, tp = fpr[1:] * n_in, tpr[1:] * n_out
    precision = tp / (tp + fp)
    auprc = float(np.sum(np.diff(tpr) * precision))
    fpr_at_95 = float(fpr[np.argmax(tpr >= 0.95)])
    return {"auroc": float(auroc), "auprc": auprc, "fpr_at_95_tpr": fpr_at_95}


def threshold_report(in_scores, out_scores, threshold):
    """Precision and recall of flagging scores strictly above `threshold` (`is_anomaly`),
    with out-of-distribution (anomalous) data as the positive class.

    Args:
        in_scores: 1-D array. Scores of normal data.
        out_scores: 1-D array. Scores of anomalous data.
        threshold: float. E.g. a `calibrate` record's "threshold".

    Returns:
        A dict {"threshold", "precision" (None when nothing is flagged), "recall",
        "false_positive_rate", "flagged_out", "flagged_in"}.

    Example:

    >>> threshold_report([0.1, 0.2, 0.3], [0.25, 0.4], threshold=0.22)["precision"]
    0.6666666666666666
    """
    in_scores = _check_scores(in_scores, "in_scores")
    out_scores = _check_scores(out_scores, "out_scores")
    flagged_in, flagged_out = int(np.sum(in_scores > threshold)), int(np.sum(out_scores > threshold))
    flagged = flagged_in + flagged_out
    return {
        "threshold": float(threshold),
        "precision": flagged_out / flagged if flagged else None,
        "recall": flagged_out / len(out_scores),
        "false_positive_rate": flagged_in / len(in_scores),
        "flagged_out": flagged_out,
        "flagged_in": flagged_in,
    }


# --- calibration stored in a run directory ----------------------------------------

CALIBRATION_FILE = "anomaly.json"
# Scores whose whole computation is TensorFlow ops on one batch, so an exported
# SavedModel can compute them: `regret` (stateless noise, a tf.while_loop of Adam
# steps), `reconstruction`, and an AE's `complexity` (PNG length by tf.io.encode_png).
# A VAE's `iw_nll` (and so its `complexity`) and `neg_elbo` draw from a seed generator
# whose state advances with every batch: a graph would not give the Python scores back.
_EXPORTABLE = ("regret", "reconstruction")


def default_method(model):
    """The score `calibrate` uses by default: `regret` for a variational model (the only
    one that held up in both directions: AUROC 0.98 Fashion-MNIST vs MNIST and back, where
    `complexity` fell to 0.03 on the reverse), `complexity` for an AE (its best score;
    `reconstruction` for an AE of a table's records, which are not images).
    All run inside an exported SavedModel (`is_exportable`)."""
    if model.is_variational:
        return "regret"
    return "complexity" if model.input_name == "images" else "reconstruction"


def is_exportable(model, method):
    """Whether `method` can be computed by `score_graph` (and so by a SavedModel)."""
    return method in _EXPORTABLE or (method == "complexity" and not model.is_variational)


def score_graph(model, record):
    """A function (images in [0, 1], labels or None) -> per-example scores of the
    calibrated `record`, made of TensorFlow ops only (for export).

    Raises:
        ValueError: the record's score cannot run in a graph (`is_exportable`).
    """
    method, options = record["score"], record.get("options", {})
    if not is_exportable(model, method):
        raise ValueError(f"score {method!r} cannot be exported; calibrate regret, reconstruction "
                         "or (for an AE) complexity")
    if method == "regret":
        options = {**REGRET_OPTIONS, "seed": 0, **options}
        return regret_graph(model, options["regret_steps"], options["regret_draws"],
                            options["regret_learning_rate"], options["seed"])
    if method == "reconstruction":
        return lambda x, labels: reconstruction_nll(model, x, labels)
    return lambda x, labels: reconstruction_nll(model, x, labels) - png_nats(x)


def save_calibration(run_dir, record):
    """Writes a `calibrate` record to RUN_DIR/anomaly.json (atomically); returns the path."""
    from vae_tf.runs.run import write_json

    return write_json(pathlib.Path(run_dir) / CALIBRATION_FILE, record)


def load_calibration(run_dir):
    """The record `save_calibration` wrote, or None if the run was never calibrated."""
    path = pathlib.Path(run_dir) / CALIBRATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None
