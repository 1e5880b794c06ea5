"""A run's model exported as a SavedModel version (TF Serving's NAME/VERSION layout), with
the run's anomaly threshold and latent sampler when it has them."""

import pathlib

from vae_tf.runs.calibration import load_calibration
from vae_tf.runtime.names import check_name
from vae_tf.runs.run import Run
from vae_tf.runs.runlock import run_lock
from vae_tf.runs.sampling import latent_sampler
from vae_tf.runs.sources import open_run
from vae_tf.serving.export import EXPORT_ROOT, export_saved_model


def export_model(model, run_dir, name, saved_models=EXPORT_ROOT, tflite=False, sampler=None):
    """Exports `model` of the run at `run_dir` (a calibrated run's model also gets the
    `anomaly` signature); returns (version path, whether it has that signature)."""
    record = load_calibration(run_dir)
    path = export_saved_model(model, saved_models, name=name, tflite=tflite, anomaly=record,
                              latent_sampler=sampler)
    return path, record is not None


def export_run(run, name=None, saved_models=EXPORT_ROOT, tflite=False, sampler=None):
    """Exports a finished run's model as the next version of saved_models/NAME.

    Args:
        run: `Run` or run directory.
        name: str or None. The model name; None: the run's.
        saved_models: str or Path. The export root. Defaults to `EXPORT_ROOT`.
        tflite: bool. Also write decoder.tflite. Defaults to False.
        sampler: str or None. The `sample` signature's codes (`vae_tf.runs.sampling.SAMPLERS`);
            None: the prior if the model has one, else the run's fitted mixture if any.

    Returns:
        (version path, whether it has an `anomaly` signature).
    """
    run_dir = run.path if isinstance(run, Run) else pathlib.Path(run)
    name = check_name(run_dir.resolve().name if name is None else name)
    finished = open_run(run)  # first: a missing run is refused before the lock is taken
    latent = latent_sampler(finished, sampler, required=False)
    with run_lock(run_dir):
        return export_model(finished.model, run_dir, name, saved_models, tflite, latent)
