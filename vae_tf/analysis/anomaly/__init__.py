"""Anomaly and out-of-distribution scores on new data, thresholds, and ROC figures of merit.

Every score is per example, in nats, and oriented so that **higher means more
anomalous**. Raw likelihoods (`neg_elbo`, `iw_nll`) fail on the textbook
out-of-distribution case: a VAE trained on Fashion-MNIST gives MNIST digits *higher*
likelihood, because simple images are likely under any model of images (Nalisnick et
al. 2019, "Do deep generative models know what they don't know?"). `complexity` and
`regret` correct for that without any outside data; `regret` is the more robust of the
two (see `score`).

The package: `inputs` (checked arrays), `quantities` (PNG length, regret), `scores`
(`score`, `Scorer`), `thresholds` (`calibrate`, `is_anomaly`), `roc` (figures of merit),
`calibration` (what a calibrated run exports) and `figures` (ROC and histogram plots).
Which scores apply to a model, and which a graph can compute, the model says
(`model.anomaly_scores`, `model.exportable_scores`).

Example (the docstring examples run as they are; `tests/analysis/test_anomaly.py` runs them):

    normal = anomaly.score(model, validation_images)     # {score name: array}
    record = anomaly.calibrate(normal["complexity"], fpr=0.01, name="complexity")
    flags = anomaly.is_anomaly(anomaly.score(model, new_images), record)
    anomaly.roc_report(normal["complexity"], anomaly.score(model, odd_images)["complexity"])
"""

from vae_tf.analysis.anomaly.calibration import default_method, is_exportable, score_graph
from vae_tf.analysis.anomaly.figures import ood_histograms, ood_roc
from vae_tf.analysis.anomaly.inputs import as_arrays
from vae_tf.analysis.anomaly.quantities import (
    png_nats, reconstruction_nll, regret_graph, regret_noise, regret_terms,
)
from vae_tf.analysis.anomaly.roc import average_ranks, roc_curve, roc_report, threshold_report
from vae_tf.analysis.anomaly.scores import (
    METHODS, REGRET_OPTIONS, Scorer, available_methods, check_methods, score,
)
from vae_tf.analysis.anomaly.thresholds import FPR, calibrate, is_anomaly

__all__ = [
    "FPR", "METHODS", "REGRET_OPTIONS", "Scorer", "as_arrays", "available_methods", "average_ranks",
    "calibrate", "check_methods", "default_method", "is_anomaly", "is_exportable",
    "ood_histograms", "ood_roc", "png_nats", "reconstruction_nll", "regret_graph",
    "regret_noise", "regret_terms", "roc_curve", "roc_report", "score", "score_graph",
    "threshold_report",
]
