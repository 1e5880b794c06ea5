"""A run's anomaly calibration: the `vae_tf.analysis.anomaly.calibrate` record stored as
RUN_DIR/anomaly.json, read by `vae-tf score`, `vae-tf ood` and export.

The file is untrusted input like every file of a run directory: `load_calibration` checks
it whole before anything is scored, and names the file and the field it refuses.
"""

import json
import math
import pathlib

from vae_tf.analysis.anomaly import METHODS
from vae_tf.runtime.files import write_json

CALIBRATION_FILE = "anomaly.json"
# Options that count something: integers >= 1.
_POSITIVE_INTS = ("iw_samples", "regret_steps", "regret_draws")


def save_calibration(run_dir, record):
    """Writes a `calibrate` record to RUN_DIR/anomaly.json (atomically); returns the path."""
    return write_json(pathlib.Path(run_dir) / CALIBRATION_FILE, record)


def load_calibration(run_dir):
    """The record `save_calibration` wrote, checked, or None if the run was never calibrated.

    Raises:
        ValueError: the file is not JSON, or a field is missing or out of range; the
            message names the file, the field and how to make the file again.
    """
    path = pathlib.Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    again = f"run `vae-tf calibrate {run_dir}` to write it again"
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a calibration record ({error}); {again}") from None
    problem = _problem(record)
    if problem:
        raise ValueError(f"{path}: {problem}; {again}")
    return record


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _problem(record):
    """What is wrong with a calibration record, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    if record.get("score") not in METHODS:
        return f"score must be one of {', '.join(METHODS)}, got {record.get('score')!r}"
    if not (_is_number(record.get("fpr")) and 0 < record["fpr"] < 1):
        return f"fpr must be a number in (0, 1), got {record.get('fpr')!r}"
    if not _is_number(record.get("threshold")):
        return f"threshold must be a finite number, got {record.get('threshold')!r}"
    if not _is_positive_int(record.get("num_examples")):
        return f"num_examples must be an integer >= 1, got {record.get('num_examples')!r}"
    options = record.get("options", {})
    if not isinstance(options, dict):
        return f"options must be a JSON object, got {type(options).__name__}"
    for name in _POSITIVE_INTS:
        if name in options and not _is_positive_int(options[name]):
            return f"options.{name} must be an integer >= 1, got {options[name]!r}"
    if "regret_learning_rate" in options and not (
            _is_number(options["regret_learning_rate"]) and options["regret_learning_rate"] > 0):
        return f"options.regret_learning_rate must be a number > 0, got {options['regret_learning_rate']!r}"
    if "seed" in options and not (isinstance(options["seed"], int) and not isinstance(options["seed"], bool)):
        return f"options.seed must be an integer, got {options['seed']!r}"
    return None
