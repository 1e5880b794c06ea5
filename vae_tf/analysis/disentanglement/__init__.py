"""Disentanglement metrics: the seven of disentanglement_lib.

Information-based (`information`): MIG and Modularity. Predictor-based (`predictors`):
SAP, DCI and Explicitness. Intervention-based (`interventions`): the FactorVAE score, the
β-VAE metric and IRS. `scores.all_scores` computes them all for a model and a factor sampler.
Modularity and Explicitness are one paper's pair (Ridgeway & Mozer 2018), so the seven
metrics give eight numbers.

Each metric follows its paper; where a paper leaves a choice open (sample sizes,
discretization, which classifier) the defaults are those of disentanglement_lib
(Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations"), the setting published numbers are usually compared in.

`codes` are (examples, dims) float arrays (for a VAE the posterior means), `factors`
(examples, factors) integer arrays of ground-truth factor indices (for dSprites the
labels of `load_data("dsprites")`, or `DSprites.sample`). Scores are in [0, 1].

Example:

>>> sprites = DSprites()
>>> images, factors = sprites.sample(10_000, np.random.default_rng(0))
>>> codes = encoder_means(model)(images)
>>> mig(codes, factors)
"""

from vae_tf.analysis.disentanglement.common import discretize, encoder_means, mutual_information
from vae_tf.analysis.disentanglement.information import mig, modularity
from vae_tf.analysis.disentanglement.interventions import beta_vae_score, factor_vae_score, irs
from vae_tf.analysis.disentanglement.predictors import dci, explicitness, sap
from vae_tf.analysis.disentanglement.scores import DEFAULT_SAMPLES, METRICS, all_scores, summary

__all__ = [
    "DEFAULT_SAMPLES", "METRICS", "all_scores", "beta_vae_score", "dci", "discretize", "encoder_means",
    "explicitness", "factor_vae_score", "irs", "mig", "modularity", "mutual_information", "sap", "summary",
]
