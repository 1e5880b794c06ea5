"""Disentanglement scores of a run trained on a data set with known factors (a data source
that registers a factor `sampler`, such as dsprites), as a dict or written as JSON."""

from vae_tf.data import sources as data_sources
from vae_tf.runtime.files import write_json
from vae_tf.runs.sources import open_run

# Sample sizes of `vae_tf.analysis.disentanglement.all_scores` by name: "default" takes a
# few minutes for a small model on 2 CPU cores; "paper" is disentanglement_lib's
# (`DEFAULT_SAMPLES`: the FactorVAE score then encodes 970,000 images and the β-VAE metric
# 1,920,000); "quick" is for smoke tests.
RUN_SAMPLES = {"mig": 10_000, "sap": 5_000, "dci": 5_000, "factor_vae_variance": 5_000,
               "factor_vae_train": 1_000, "factor_vae_eval": 500, "beta_vae_train": 500,
               "beta_vae_eval": 250, "modularity": 10_000, "explicitness": 5_000, "irs": 10_000}
QUICK_SAMPLES = {"mig": 300, "sap": 300, "dci": 300, "factor_vae_variance": 200,
                 "factor_vae_train": 20, "factor_vae_eval": 10, "beta_vae_train": 20,
                 "beta_vae_eval": 10, "modularity": 300, "explicitness": 300, "irs": 300}
SAMPLE_SIZES = ("default", "quick", "paper")


def sample_sizes(samples):
    """The sample sizes `samples` names ("default", "quick" or "paper"); a dict is taken as
    it is (overrides of `DEFAULT_SAMPLES`)."""
    from vae_tf.analysis.disentanglement import DEFAULT_SAMPLES

    if isinstance(samples, dict):
        return samples
    if samples not in SAMPLE_SIZES:
        raise ValueError(f"samples must be one of {SAMPLE_SIZES} or a dict of sizes, got {samples!r}")
    return {"default": RUN_SAMPLES, "quick": QUICK_SAMPLES, "paper": DEFAULT_SAMPLES}[samples]


def factor_sampler(run):
    """The factor sampler of the data set `run` was trained on (`Source.sampler`).

    Raises:
        ValueError: the data set's generating factors are not known.
    """
    try:
        return data_sources.factor_sampler(run.config.data.dataset)
    except ValueError as error:
        raise ValueError(f"{run.path} cannot be scored: {error}") from None


def evaluate_run(run, seed=0, samples="default", metrics=None):
    """The disentanglement metrics of a finished run, on fresh draws from its data set.

    The data set must know its factors (`factor_sampler`); the codes are the model's
    latent means. Every metric computed takes its own random stream from `seed`, so a
    subset gives the numbers the whole set gives.

    Args:
        run: `Run` or run directory.
        seed: int. Seed of every draw and split. Defaults to 0.
        samples: str or dict. Sample sizes: "default", "quick", "paper" (disentanglement_lib's)
            or a dict of `DEFAULT_SAMPLES` overrides. Defaults to "default".
        metrics: list of str or None. Names from
            `vae_tf.analysis.disentanglement.METRICS`. Defaults to all eight numbers of
            the seven metrics.

    Returns:
        `vae_tf.analysis.disentanglement.all_scores`' JSON-ready dict; its "summary" holds
        one float per metric (e.g. `evaluate_run("runs/beta")["summary"]["mig"]`).

    Example:

    >>> evaluate_run("runs/beta", samples="quick", metrics=["mig", "irs"])["summary"]
    """
    from vae_tf.analysis.disentanglement import all_scores
    from vae_tf.analysis.disentanglement.scores import check_metrics

    finished = open_run(run)
    sizes, metrics = sample_sizes(samples), check_metrics(metrics)  # refused before the model loads
    sampler = factor_sampler(finished)
    return all_scores(finished.model, sampler, seed=seed, samples=sizes, metrics=metrics)


def score_disentanglement(run, out, seed=0, samples="default", metrics=None):
    """`evaluate_run`'s scores, written to the JSON file `out`.

    Returns:
        (scores, path).
    """
    scores = evaluate_run(run, seed=seed, samples=samples, metrics=metrics)
    return scores, write_json(out, scores)
