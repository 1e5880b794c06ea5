"""A run's anomaly calibration: the `vae_tf.analysis.anomaly.calibrate` record stored as
RUN_DIR/anomaly.json, read by `vae-tf score`, `vae-tf ood` and export."""

import json
import pathlib

from vae_tf.runtime.files import write_json

CALIBRATION_FILE = "anomaly.json"


def save_calibration(run_dir, record):
    """Writes a `calibrate` record to RUN_DIR/anomaly.json (atomically); returns the path."""
    return write_json(pathlib.Path(run_dir) / CALIBRATION_FILE, record)


def load_calibration(run_dir):
    """The record `save_calibration` wrote, or None if the run was never calibrated."""
    path = pathlib.Path(run_dir) / CALIBRATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None
