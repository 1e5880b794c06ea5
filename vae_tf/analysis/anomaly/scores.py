"""The anomaly scores of new data (`score`, `Scorer`): higher means more anomalous."""

import keras
import numpy as np

from vae_tf.analysis.anomaly.inputs import as_arrays, batches
from vae_tf.analysis.anomaly.quantities import png_nats, regret_graph
from vae_tf.analysis.evaluation import IW_SAMPLES, batch_graph, log_likelihood_graph

METHODS = ("neg_elbo", "iw_nll", "reconstruction", "complexity", "regret")
# `score`'s regret settings, stored with a calibration so an export recomputes the same score.
REGRET_STEPS, REGRET_DRAWS, REGRET_LEARNING_RATE = 20, 4, 0.1
REGRET_OPTIONS = {"regret_steps": REGRET_STEPS, "regret_draws": REGRET_DRAWS,
                  "regret_learning_rate": REGRET_LEARNING_RATE}


def available_methods(model):
    """The score names `model` supports (`model.anomaly_scores`): all of `METHODS` for a
    VAE/CVAE; an AE has no latent distribution, so only `reconstruction` and
    `complexity`; a model of a table's records has no `complexity` (it compresses images)."""
    return model.anomaly_scores


def check_methods(model, methods):
    """`methods` as a tuple after checking the model supports each (None: all it supports)."""
    supported = available_methods(model)
    if methods is None:
        return supported
    if isinstance(methods, str):
        methods = (methods,)
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown score method {method!r}; choose from {METHODS}")
        if method in model.supported_scores and method not in supported:  # complexity of records
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
    regret_steps=REGRET_STEPS,
    regret_draws=REGRET_DRAWS,
    regret_learning_rate=REGRET_LEARNING_RATE,
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
            Defaults to `IW_SAMPLES`.
        batch_size: int. Examples per batch, >= 1. Defaults to 256.
        seed: int. Seed of every random draw. Defaults to 0.
        labels: array or None. Class ids of an array `data` (CVAE). Defaults to None.
        regret_steps: int. Optimization steps of `regret`, >= 1. Defaults to `REGRET_STEPS`.
        regret_draws: int. Noise draws per example of `regret`, >= 1. Defaults to `REGRET_DRAWS`.
        regret_learning_rate: float. Adam step size of `regret`. Defaults to `REGRET_LEARNING_RATE`.

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
                 regret_steps=REGRET_STEPS, regret_draws=REGRET_DRAWS,
                 regret_learning_rate=REGRET_LEARNING_RATE):
        self.methods = check_methods(model, methods)
        for name, value in (("iw_samples", iw_samples), ("batch_size", batch_size),
                            ("regret_steps", regret_steps), ("regret_draws", regret_draws)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.model, self.batch_size = model, batch_size
        wanted = set(self.methods)
        # The graphs to run, named by what they compute; __call__ combines them into scores.
        self.graphs = {}
        # `complexity` corrects the model's likelihood score by the PNG length.
        likelihood = model.likelihood_score if "complexity" in wanted else None
        if "iw_nll" in wanted or likelihood == "iw_nll":
            self.graphs["log_likelihood"] = log_likelihood_graph(model, iw_samples, seed, batch_size)
        if "neg_elbo" in wanted:
            seed_generator = keras.random.SeedGenerator(seed)
            self.graphs["neg_elbo"] = batch_graph(
                model, lambda x, y: model.per_example_terms(x, y, seed=seed_generator)["neg_elbo"]
            )
        if "reconstruction" in wanted or likelihood == "reconstruction":
            self.graphs["reconstruction"] = batch_graph(
                model, lambda x, y: model.reconstruction_nll(x, y)
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
        for x, y in batches(images, labels, self.batch_size):
            for name, graph in self.graphs.items():
                parts[name].append(np.asarray(graph(x, y)))
        results = {name: np.concatenate(values) for name, values in parts.items()}
        if "log_likelihood" in results:
            results["iw_nll"] = -results["log_likelihood"]
        if "png" in results:
            results["complexity"] = results[self.model.likelihood_score] - results["png"]
        return {method: results[method].astype("float64") for method in self.methods}
