"""A finished run's artefacts made again or added: test metrics (metrics.json), plots and
the Embedding Projector, and the latent means of a split as .npy files."""

import pathlib

import numpy as np

from vae_tf.analysis.evaluation import IW_SAMPLES, latent_features
from vae_tf.runtime.files import atomic_write
from vae_tf.runs.runlock import run_lock
from vae_tf.runs.sources import open_with_data, split_of
from vae_tf.runs import training


def evaluate_run(run, iw_samples=IW_SAMPLES):
    """Evaluates a run on its test split and replaces its metrics.json; returns the `Run`
    (its `metrics` the new ones).

    Args:
        run: `Run` or run directory.
        iw_samples: int. Importance samples of the IWAE estimate. Defaults to `IW_SAMPLES`.
    """
    finished, model, data = open_with_data(run)
    with run_lock(finished.path):
        finished.write_metrics(training.evaluate_model(model, data, iw_samples))
    return finished


def plot_run(run, projector_examples=None):
    """Draws every plot of a run into RUN_DIR/plots and its Embedding Projector into
    RUN_DIR/logs/projector.

    Args:
        run: `Run` or run directory.
        projector_examples: int or None. Test examples in the projector, 0 for none;
            None: the run's own setting (`TrainingConfig.projector_examples`).

    Returns:
        (plot paths, projector config path or None).
    """
    finished, model, data = open_with_data(run)
    if projector_examples is None:
        projector_examples = finished.config.training.projector_examples
    images, labels = training.held_out_examples(data)
    with run_lock(finished.path):
        paths = training.draw_plots(model, images, labels, finished.history(), finished.path / "plots",
                           class_names=data.class_names, latent_sampler=finished.latent_sampler)
        projector = training.write_projector(model, data, finished.path / "logs" / "projector", projector_examples)
    return paths, projector


def encode_split(run, out, split="test"):
    """Writes the latent means of a run's split to the .npy file `out`, and their class
    labels beside it (`out` stem + "_labels.npy") when the data has classes.

    Returns:
        (features shape, labels path or None).
    """
    _, model, data = open_with_data(run)
    features, labels = latent_features(model, split_of(data, split))
    out = pathlib.Path(out)
    atomic_write(out, lambda path: np.save(path, features))
    if data.num_classes is None:
        return features.shape, None
    labels_path = out.with_name(out.stem + "_labels.npy")
    atomic_write(labels_path, lambda path: np.save(path, labels))
    return features.shape, labels_path
