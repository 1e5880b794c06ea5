"""Disentanglement scores of a run trained on dSprites, written as JSON."""

from vae_tf.runtime.files import write_json
from vae_tf.runs.sources import open_run

# Sample sizes of `vae_tf.analysis.disentanglement.all_scores` by name: "default" takes a
# few minutes for a small model on 2 CPU cores; "paper" is disentanglement_lib's
# (`DEFAULT_SAMPLES`: the FactorVAE score then encodes 970,000 images); "quick" is for smoke tests.
RUN_SAMPLES = {"mig": 10_000, "sap": 5_000, "dci": 5_000, "factor_vae_variance": 5_000,
               "factor_vae_train": 1_000, "factor_vae_eval": 500}
QUICK_SAMPLES = {"mig": 300, "sap": 300, "dci": 300, "factor_vae_variance": 200,
                 "factor_vae_train": 20, "factor_vae_eval": 10}


def sample_sizes(name):
    """The sample sizes called `name`: "default", "quick" or "paper"."""
    from vae_tf.analysis.disentanglement import DEFAULT_SAMPLES

    return {"default": RUN_SAMPLES, "quick": QUICK_SAMPLES, "paper": DEFAULT_SAMPLES}[name]


def score_disentanglement(run, out, seed=0, samples="default"):
    """MIG, SAP, DCI and FactorVAE scores of a run trained on dsprites, written to `out`.

    Args:
        run: `Run` or run directory.
        out: str or Path. The JSON file.
        seed: int. Seed of every draw and split. Defaults to 0.
        samples: str. The sample sizes (`sample_sizes`). Defaults to "default".

    Returns:
        (scores, path).
    """
    from vae_tf.analysis.disentanglement import all_scores
    from vae_tf.data.dsprites import DSprites

    finished = open_run(run)
    if finished.config.data.dataset != "dsprites":
        raise ValueError(f"{finished.path} was trained on {finished.config.data.dataset}, not dsprites: "
                         "the metrics need dSprites' ground-truth factors")
    scores = all_scores(finished.model, DSprites(), seed=seed, samples=sample_sizes(samples))
    return scores, write_json(out, scores)
