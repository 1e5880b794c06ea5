"""Faults and bad input: a run owned by one process, disk full, data errors, checked inputs."""

import csv
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

from conftest import SMALL_DIR
from vae_tf import runlock
from vae_tf.cli import main
from vae_tf.config import RunConfig
from vae_tf.training import train

SMALL = dict(dataset="idx", data_dir=str(SMALL_DIR), hidden_units=(16,), latent_dim=2,
             iw_samples=2, batch_size=256, epochs=2)
ROOT = pathlib.Path(__file__).resolve().parents[1]


def small_config(**changes):
    return RunConfig.from_dict({**SMALL, **changes})


def history_epochs(run_dir):
    with open(pathlib.Path(run_dir) / "history.csv") as f:
        rows = list(csv.reader(f))
    return [row[0] for row in rows]


def test_a_second_process_on_a_locked_run_is_refused_at_once(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".same.lock").write_text(f"{holder.pid} {socket.gethostname()} token\n")
        status = main(["train", "--dataset", "idx", "--data-dir", str(SMALL_DIR), "--out", str(tmp_path),
                       "--name", "same", "--epochs", "1", "--no-export"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert f"is in use by process {holder.pid} on {socket.gethostname()}" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".same.lock"]  # nothing else written


def test_a_stale_lock_is_taken_over_with_a_notice(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / ".r.lock"
    lock.write_text(f"{dead.pid} {socket.gethostname()} token\n")
    caplog.set_level("WARNING", logger="vae_tf")
    with runlock.run_lock(tmp_path / "r.partial") as path:
        assert path == lock and lock.read_text().split()[:2] == [str(os.getpid()), socket.gethostname()]
        with pytest.raises(runlock.RunLocked, match=f"in use by process {os.getpid()}"):
            with runlock.run_lock(tmp_path / "r"):
                pass
    assert "took over the lock" in caplog.text and str(dead.pid) in caplog.text
    assert not lock.exists()


def test_a_lock_from_another_host_is_refused(tmp_path):
    (tmp_path / ".r.lock").write_text("1 some-other-host token\n")
    with pytest.raises(runlock.RunLocked, match="process 1 on some-other-host"):
        runlock.check_unlocked(tmp_path / "r")


@pytest.mark.slow
def test_two_concurrent_trains_on_one_name(tmp_path):
    """Two `vae-tf train --name same` at once: one trains, the other refuses in one line;
    history.csv has one header and each epoch once."""
    command = [sys.executable, "-m", "vae_tf", "train", "--dataset", "idx", "--data-dir", str(SMALL_DIR),
               "--out", str(tmp_path), "--name", "same", "--epochs", "3", "--hidden-units", "16",
               "--latent-dim", "2", "--iw-samples", "2", "--no-export"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / ".same.lock").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 2
    refusal = [line for line in second.stderr.splitlines() if line.startswith("vae-tf: error:")]
    assert len(refusal) == 1 and f"in use by process {first.pid}" in refusal[0]
    assert history_epochs(tmp_path / "same") == ["epoch", "0", "1", "2"]
    assert not (tmp_path / ".same.lock").exists()
