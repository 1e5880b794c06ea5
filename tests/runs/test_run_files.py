"""Files inside a run directory are untrusted input: a damaged metrics.json or checkpoint
manifest is refused whole, naming the file, the field and the fix, before any work."""

import json

import pytest

from vae_tf.cli import main
from vae_tf.runs.checkpoints import METADATA, MANIFEST, WEIGHTS, CheckpointError, completed_epochs
from vae_tf.runs.run import Run, read_metrics
from vae_tf.runs.training import train
from helpers import InterruptAfter

GOOD_METRICS = {"neg_elbo": 100.5, "iw_log_likelihood": -99.0, "iw_samples": 2, "examples": 2000}


@pytest.mark.parametrize("text, message", [
    ("{\"neg_elbo\": 1.0,", "not valid JSON"),
    ("[1, 2]", "not a JSON object of metrics"),
    ("{}", "not a JSON object of metrics"),
    ("{\"neg_elbo\": NaN}", "metric 'neg_elbo' must be a finite number, got nan"),
    ("{\"kl\": \"high\"}", "metric 'kl' must be a finite number, got 'high'"),
    ("{\"examples\": true}", "metric 'examples' must be a finite number, got True"),
])
def test_a_damaged_metrics_file_is_refused_naming_file_and_field(text, message, tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{path}: {message}.*; rerun vae-tf evaluate"):
        read_metrics(path)
    path.write_text(json.dumps(GOOD_METRICS))
    assert read_metrics(path) == GOOD_METRICS


def _manifest_damages(entry):
    files = entry["files"]
    return [
        ("{", "unreadable manifest"),
        (json.dumps({"checkpoints": [entry], "extra": 1}), "'checkpoints' must be a list of one or two"),
        (json.dumps({"checkpoints": []}), "'checkpoints' must be a list of one or two"),
        (json.dumps({"checkpoints": [entry] * 3}), "'checkpoints' must be a list of one or two"),
        (json.dumps({"checkpoints": ["epoch 2"]}), r"checkpoints\[0\] must hold 'epoch'"),
        (json.dumps({"checkpoints": [{**entry, "epoch": -1}]}), r"checkpoints\[0\] must hold 'epoch'"),
        (json.dumps({"checkpoints": [{**entry, "epoch": "2"}]}), r"checkpoints\[0\] must hold 'epoch'"),
        (json.dumps({"checkpoints": [{**entry, "files": {**files, "../../etc/passwd": files[WEIGHTS]}}]}),
         r"checkpoints\[0\].files must describe"),
        (json.dumps({"checkpoints": [{**entry, "files": {**files, METADATA: {"size": 1, "sha256": "x"}}}]}),
         r"checkpoints\[0\].files\['training_metadata.json'\] must give 'size'"),
    ]


def test_a_damaged_checkpoint_manifest_is_refused_in_one_line_and_left_as_found(
        tiny_data, small_config, tmp_path, capsys):
    config = small_config(out=str(tmp_path), name="t", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[InterruptAfter(epoch=0)])
    manifest = tmp_path / "t.partial" / "backup" / MANIFEST
    entry = json.loads(manifest.read_text())["checkpoints"][0]
    for text, message in _manifest_damages(entry):
        manifest.write_text(text)
        with pytest.raises(CheckpointError, match=f"^{manifest}: {message}.*pass --overwrite to start afresh"):
            completed_epochs(manifest.parent)
    status = main(["train", *tiny_data, "--out", str(tmp_path), "--name", "t", "--epochs", "3",
                   "--hidden-units", "16", "--latent-dim", "2", "--iw-samples", "2", "--batch-size", "256",
                   "--validation-fraction", "0.1", "--no-export"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and f"vae-tf: error: {manifest}: " in err[0]
    assert manifest.read_text() == text and not (tmp_path / "t").exists()  # left as found
    manifest.write_text(json.dumps({"checkpoints": [entry]}))
    assert completed_epochs(manifest.parent) == entry["epoch"]


def test_a_run_reads_its_metrics_through_the_check(tmp_path, small_config):
    finished = train(small_config(out=str(tmp_path), name="m", epochs=1), verbose=0)
    (finished.path / "metrics.json").write_text("{\"neg_elbo\": \"oops\"}")
    with pytest.raises(ValueError, match="metrics.json: metric 'neg_elbo' must be a finite number"):
        Run(finished.path).metrics
