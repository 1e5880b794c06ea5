"""The run directory: atomic writers, reading a run back, creating and finishing one."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from vae_tf.config import RunConfig
from vae_tf.models.factory import make_model
from vae_tf.runs.run import BACKUP_DIR, Run, check_start, finish, read_curve, read_history, start
from vae_tf.runtime.files import atomic_write, write_csv, write_json


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})

    def fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temporary left


def test_atomic_write_needs_an_existing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="output directory does not exist"):
        write_json(tmp_path / "nowhere" / "x.json", {})


def test_csv_and_history_round_trip(tmp_path):
    write_csv(tmp_path / "history.csv", ["epoch", "loss", "kl"], [(0, 3.5, 1.0), (1, 2.5, 1.5)])
    assert read_history(tmp_path) == {"loss": [3.5, 2.5], "kl": [1.0, 1.5]}
    assert read_history(tmp_path / "nothing") is None


def test_a_run_reads_back_its_config_metrics_history_and_model(tmp_path):
    config = RunConfig(name="r", out=str(tmp_path))
    path = start(config, resume=False)
    model = make_model("vae", "mlp", (4, 4, 1), latent_dim=2, hidden_units=(4,))
    model.save(path / "model.keras")
    write_json(path / "metrics.json", {"neg_elbo": 12.5})
    write_csv(path / "history.csv", ["epoch", "loss"], [(0, 3.0)])
    (path / BACKUP_DIR).mkdir()
    final = finish(path)
    assert final == tmp_path / "r" and not path.exists() and not (final / BACKUP_DIR).exists()

    run = Run(final)
    assert run.config == config and run.name == "r"
    assert run.metrics == {"neg_elbo": 12.5} and run.history() == {"loss": [3.0]}
    for got, want in zip(run.model.get_weights(), model.get_weights(), strict=True):
        assert (got == want).all()
    run.write_metrics({"neg_elbo": 11.0})
    assert Run(final).metrics == {"neg_elbo": 11.0}


def test_an_unfinished_run_is_named_as_such(tmp_path):
    config = RunConfig(name="u", out=str(tmp_path))
    run = Run(start(config, resume=False))
    with pytest.raises(FileNotFoundError, match="no model.keras \\(the run did not finish\\)"):
        run.model
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        Run(tmp_path)


def test_check_start_writes_nothing_and_start_creates_a_whole_partial(tmp_path):
    config = RunConfig(name="r", out=str(tmp_path / "runs"))
    assert check_start(config) is False
    assert not (tmp_path / "runs").exists()
    partial = start(config, resume=False)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r.partial"]
    assert RunConfig.from_dict(json.loads((partial / "config.json").read_text())) == config
    finish(partial)
    with pytest.raises(FileExistsError, match="already exists: pass --overwrite"):
        check_start(config)
    assert check_start(config, overwrite=True) is False


def test_a_file_written_atomically_reaches_the_disk_before_its_name(tmp_path, monkeypatch):
    """fsync, then rename: after a power cut the new name never points at an empty file."""
    from vae_tf.runtime import files

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(files.os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b)))
    files.write_json(tmp_path / "manifest.json", {"epoch": 1})
    assert events == ["fsync", "rename"]


def test_a_staged_run_records_its_schedule_and_its_learning_curve(small_config, tmp_path):
    """--lr-schedule staged, --adam-epsilon and --activation reach the model and
    config.json; --curve-iw-samples writes the test metrics after epochs 1, 4 and the last."""
    from vae_tf.runs.training import train

    config = small_config(epochs=5, lr_schedule="staged", adam_epsilon=1e-4, activation="tanh",
                          curve_iw_samples=3, out=str(tmp_path), name="staged")
    finished = train(config, verbose=0)
    optimizer = finished.model.optimizer
    assert optimizer.epsilon == 1e-4
    # after 5 passes the schedule is in stage 2 (passes 4..12)
    np.testing.assert_allclose(float(optimizer.learning_rate), 1e-3 * 10 ** (-2 / 7), rtol=1e-6)
    saved = json.loads((finished.path / "config.json").read_text())["training"]
    assert (saved["lr_schedule"], saved["adam_epsilon"], saved["curve_iw_samples"]) == ("staged", 1e-4, 3)
    with open(finished.path / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 4, 5]
    assert all(int(r["iw_samples"]) == 3 and float(r["iw_log_likelihood"]) < 0 for r in rows)
    epochs, nats, samples = read_curve(finished.path)
    assert (epochs, samples) == ([1, 4, 5], 3) and nats == [-float(r["iw_log_likelihood"]) for r in rows]
    script = subprocess.run([sys.executable, "scripts/learning_curves.py", str(finished.path), "--out",
                             str(tmp_path / "curves.png")], capture_output=True, text=True, timeout=120,
                            cwd=pathlib.Path(__file__).parents[2], env={**os.environ, "PYTHONPATH": "."})
    assert script.returncode == 0, script.stderr
    assert f"staged: {nats[-1]:.2f} nats after 5 passes (K = 3); final: " in script.stdout
    assert (tmp_path / "curves.png").stat().st_size > 10_000


@pytest.mark.parametrize("text", ["", "epoch,iw_log_likelihood,iw_samples\n", "epoch,iw_log_likelihood\n1,-90\n",
                                  "epoch,iw_log_likelihood,iw_samples\n1,oops,5\n",
                                  "epoch,iw_log_likelihood,iw_samples\n4,-90,5\n1,-99,5\n",
                                  "epoch,iw_log_likelihood,iw_samples\n1,nan,5\n"])
def test_a_damaged_learning_curve_is_refused_naming_the_file(text, tmp_path):
    (tmp_path / "curve.csv").write_text(text)
    with pytest.raises(ValueError, match=f"^{tmp_path / 'curve.csv'}: not a learning curve written by vae_tf"):
        read_curve(tmp_path)
