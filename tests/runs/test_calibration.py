"""RUN_DIR/anomaly.json is untrusted: read back whole, or refused in one message naming the
file and the field."""

import json

import numpy as np
import pytest

from vae_tf.analysis import anomaly
from vae_tf.runs.calibration import CALIBRATION_FILE, load_calibration, save_calibration

RECORD = anomaly.calibrate(np.linspace(0.0, 10.0, 101), fpr=0.05, name="regret",
                           options={"iw_samples": 100, "seed": 0, **anomaly.REGRET_OPTIONS})


def test_a_saved_calibration_reads_back_equal(tmp_path):
    save_calibration(tmp_path, RECORD)
    assert load_calibration(tmp_path) == RECORD
    assert load_calibration(tmp_path / "elsewhere") is None  # never calibrated


@pytest.mark.parametrize("text, field", [
    ('{"score": "regret", "fpr": 0.05,\n', "not a calibration record"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"score": "likelihood"}', "score must be one of"),
    ({"threshold": "high"}, "threshold must be a finite number, got 'high'"),
    ({"threshold": float("nan")}, "threshold must be a finite number"),
    ({"fpr": 1.5}, "fpr must be a number in (0, 1), got 1.5"),
    ({"num_examples": 0}, "num_examples must be an integer >= 1, got 0"),
    ({"options": [1]}, "options must be a JSON object, got list"),
    ({"options": {"iw_samples": "100"}}, "options.iw_samples must be an integer >= 1, got '100'"),
    ({"options": {"regret_steps": True}}, "options.regret_steps must be an integer >= 1, got True"),
    ({"options": {"regret_learning_rate": -1}}, "options.regret_learning_rate must be a number > 0"),
    ({"options": {"seed": 1.5}}, "options.seed must be an integer, got 1.5"),
])
def test_a_bad_calibration_names_the_file_and_the_field(tmp_path, text, field):
    if isinstance(text, dict):
        text = json.dumps({**RECORD, **text})
    (tmp_path / CALIBRATION_FILE).write_text(text)
    with pytest.raises(ValueError) as error:
        load_calibration(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / CALIBRATION_FILE}: ") and field in message
    assert f"vae-tf calibrate {tmp_path}" in message  # says how to mend it
