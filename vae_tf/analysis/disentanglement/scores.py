"""All disentanglement metrics of one model at once, on fresh draws from a factor sampler,
and the headline number of each."""

import logging

import numpy as np

from vae_tf.analysis.disentanglement.common import as_encode_fn, codes_of
from vae_tf.analysis.disentanglement.information import mig, modularity
from vae_tf.analysis.disentanglement.interventions import beta_vae_score, factor_vae_score, irs
from vae_tf.analysis.disentanglement.predictors import dci, explicitness, sap

log = logging.getLogger(__name__)
# The metrics `all_scores` computes, by name; each draws its own random stream (its index
# here), so a subset gives the same numbers as the whole set. Append, never reorder.
METRICS = ("mig", "sap", "dci", "factor_vae", "beta_vae", "modularity", "explicitness", "irs")
# Sample sizes of disentanglement_lib's defaults (Locatello et al. 2019): MIG, Modularity
# and IRS on 10,000 points; SAP, DCI and Explicitness on 10,000 training and 5,000 test
# points; FactorVAE with 10,000 points for the global variances, 10,000 training and 5,000
# evaluation votes of 64 images each; the β-VAE metric 10,000 training and 5,000
# evaluation votes of 64 pairs each.
DEFAULT_SAMPLES = {
    "mig": 10_000,
    "sap": 15_000,
    "dci": 15_000,
    "factor_vae_variance": 10_000,
    "factor_vae_train": 10_000,
    "factor_vae_eval": 5_000,
    "beta_vae_train": 10_000,
    "beta_vae_eval": 5_000,
    "modularity": 10_000,
    "explicitness": 15_000,
    "irs": 10_000,
}


def check_metrics(metrics):
    """`metrics` as a tuple in `METRICS` order (None: all), refusing unknown names."""
    if metrics is None:
        return METRICS
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty list of names from {METRICS}, got {metrics!r}")
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {list(METRICS)}")
    return tuple(name for name in METRICS if name in metrics)


def all_scores(model_or_encode_fn, sampler, seed=0, samples=None, metrics=None):
    """The disentanglement metrics of a model, at disentanglement_lib's sample sizes.

    Args:
        model_or_encode_fn: a model (its latent means), or a function images -> codes.
        sampler: a factor sampler, e.g. `vae_tf.data.dsprites.DSprites()` (see
            `vae_tf.analysis.disentanglement.interventions`).
        seed: int. Seeds every draw and split. Defaults to 0.
        samples: dict or None. Overrides of `DEFAULT_SAMPLES` entries (quick runs).
            Progress is logged (`logging`, INFO) metric by metric and, for the long
            FactorVAE and β-VAE parts, about every tenth of their votes.
        metrics: list of str or None. Names from `METRICS` to compute. Defaults to all.

    Returns:
        A JSON-ready dict with an entry per metric computed: "mig", "sap" and
        "modularity" floats; "dci", "factor_vae", "beta_vae", "explicitness" and "irs"
        dicts; "summary" (`summary`), "seed" and "samples".

    Example:

    >>> json.dumps(all_scores(model, DSprites(), seed=0))
    """
    unknown = set(samples or {}) - set(DEFAULT_SAMPLES)
    if unknown:
        raise ValueError(f"unknown samples keys {sorted(unknown)}; known: {sorted(DEFAULT_SAMPLES)}")
    metrics = check_metrics(metrics)
    sizes = {**DEFAULT_SAMPLES, **(samples or {})}
    encode_fn = as_encode_fn(model_or_encode_fn)

    def draw(name):
        log.info("%s on %d images", name, sizes[name])
        images, factors = sampler.sample(sizes[name], np.random.default_rng([seed, METRICS.index(name)]))
        return codes_of(encode_fn, images), factors

    compute = {
        "mig": lambda: mig(*draw("mig")),
        "sap": lambda: sap(*draw("sap"), seed=seed),
        "dci": lambda: dci(*draw("dci"), seed=seed),
        "factor_vae": lambda: factor_vae_score(
            encode_fn, sampler, num_train=sizes["factor_vae_train"], num_eval=sizes["factor_vae_eval"],
            num_variance_estimate=sizes["factor_vae_variance"], seed=seed),
        "beta_vae": lambda: beta_vae_score(
            encode_fn, sampler, num_train=sizes["beta_vae_train"], num_eval=sizes["beta_vae_eval"], seed=seed),
        "modularity": lambda: modularity(*draw("modularity")),
        "explicitness": lambda: explicitness(*draw("explicitness"), seed=seed),
        "irs": lambda: irs(*draw("irs")),
    }
    scores = {name: compute[name]() for name in metrics}
    return {**scores, "summary": summary(scores), "seed": seed, "samples": sizes}


# The headline number of each metric's entry in `all_scores`: the key inside a dict entry.
_HEADLINE = {"dci": "disentanglement", "factor_vae": "eval_accuracy", "beta_vae": "eval_accuracy",
             "explicitness": "explicitness", "irs": "irs"}


def summary(scores):
    """One number per metric: MIG, SAP and Modularity as they are; DCI's disentanglement;
    the FactorVAE and β-VAE held-out accuracies; held-out Explicitness; IRS.

    Args:
        scores: dict. `all_scores`' result (or its metric entries).

    Returns:
        dict from metric name (`METRICS` order) to float, for the metrics in `scores`.

    Example:

    >>> summary(all_scores(model, DSprites()))["beta_vae"]
    """
    return {name: float(scores[name][_HEADLINE[name]] if name in _HEADLINE else scores[name])
            for name in METRICS if name in scores}
