"""What a calibrated run exports: the default score to calibrate, whether a score can
run in a graph, and that graph (the `anomaly` signature, `vae_tf.serving.export`).
The calibration record itself is stored by the run layer (`vae_tf.runs.calibration`)."""

from vae_tf.analysis.anomaly.quantities import png_nats, regret_graph
from vae_tf.analysis.anomaly.scores import REGRET_OPTIONS


def default_method(model):
    """The score `calibrate` uses by default (`model.default_anomaly_score`): `regret`
    for a variational model, `complexity` for an AE of images, `reconstruction` for an
    AE of a table's records. All run inside an exported SavedModel (`is_exportable`)."""
    return model.default_anomaly_score


def is_exportable(model, method):
    """Whether `method` can be computed by `score_graph` (and so by a SavedModel):
    one of `model.exportable_scores`, whose computation is TensorFlow ops on one batch."""
    return method in model.exportable_scores


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
        return model.reconstruction_nll
    return lambda x, labels: model.reconstruction_nll(x, labels) - png_nats(x)
