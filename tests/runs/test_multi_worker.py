"""Multi-worker training: two `vae-tf train --strategy multi_worker` processes on
127.0.0.1 driven by TF_CONFIG, on real digits."""

import csv
import math
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from helpers import free_ports, tf_config
from vae_tf.analysis.feature_classifier import weights_sha256
from vae_tf.runs.training import train

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def start_cluster(tmp_path, arguments, ports, kill=None):
    """Starts `vae-tf train ARGUMENTS --strategy multi_worker` on two workers at `ports` on
    127.0.0.1 (worker 0 is the chief), each with its own TMPDIR (tmp_path/tmpI) and its
    stderr in a file; `kill=(index, "POINT:N")` makes that worker SIGKILL itself at a
    kill point (`vae_tf.testing.faults`). Returns [(process, log Path)], chief first."""
    launch = len(list(tmp_path.glob("worker0-*.log")))
    launches = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch), "TF_CONFIG": tf_config(ports, index)}
        env.pop("VAE_TF_TEST_KILL", None)
        if kill and kill[0] == index:
            env["VAE_TF_TEST_KILL"] = kill[1]
        log = tmp_path / f"worker{index}-{launch}.log"
        with open(log, "w") as stderr:  # a file, not a pipe: TensorFlow's logs would fill a pipe and block
            process = subprocess.Popen([sys.executable, "-m", "vae_tf.cli", "train", *arguments,
                                        "--strategy", "multi_worker"],
                                       env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        launches.append((process, log))
    return launches


def finish(launches, timeout=TIMEOUT_S):
    """Waits for every worker to end; returns their (returncode, stderr). Whatever happens,
    no worker outlives the call."""
    try:
        return [(process.wait(timeout), log.read_text()) for process, log in launches]
    finally:
        for process, _ in launches:
            process.kill()
            process.wait()


def run_cluster(tiny_data, tmp_path, model, network=("--hidden-units", "32")):
    """Runs both workers to the end (or the timeout); returns their (returncode, stderr)."""
    arguments = ["--model", model, *network, "--latent-dim", "2", "--iw-samples", "2",
                 "--batch-size", "256", "--epochs", "2", "--seed", "5", "--validation-fraction", "0.1"]
    return finish(start_cluster(tmp_path, [*tiny_data, *arguments, "--name", model, "--out", str(tmp_path / "runs"),
                                           "--saved-models", str(tmp_path / "sm")], free_ports(2)))


def logged_digest(stderr):
    digests = re.findall(r"final weights sha256 ([0-9a-f]{64})", stderr)
    assert len(digests) == 1, stderr[-3000:]
    return digests[0]


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_two_local_workers_train_one_model(small_config, tiny_data, tmp_path, model):
    (chief_code, chief_log), (worker_code, worker_log) = run_cluster(tiny_data, tmp_path, model)
    assert chief_code == 0, chief_log[-3000:]
    assert worker_code == 0, worker_log[-3000:]
    assert "with 2 replica(s)" in chief_log

    # Only the chief wrote the run and the SavedModel; the worker cleaned up after itself.
    run = tmp_path / "runs" / model
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [model]
    assert {"config.json", "history.csv", "model.keras", "metrics.json"} <= {p.name for p in run.iterdir()}
    assert (tmp_path / "sm" / model / "1" / "saved_model.pb").is_file()
    assert list((tmp_path / "tmp1").iterdir()) == []

    # Both workers end with bit-identical weights, and the chief saved exactly those.
    chief_model = keras.saving.load_model(run / "model.keras")
    assert logged_digest(chief_log) == logged_digest(worker_log) == weights_sha256(chief_model)

    if model == "ae":  # no sampling noise: the same as one process with the same global batch
        reference = train(small_config(model="ae", hidden_units=(32,), seed=5, strategy="default",
                                       out=str(tmp_path / "ref")),
                          verbose=0)
        expected = reference.model.get_weights()
        for got, want in zip(chief_model.get_weights(), expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.slow
def test_vqvae_logs_its_own_terms_across_workers(tiny_data, tmp_path):
    """The VQ-VAE's logs (codebook terms, perplexity) go through the same one-collective step."""
    (chief_code, chief_log), (worker_code, worker_log) = run_cluster(
        tiny_data, tmp_path, "vqvae", network=("--arch", "conv", "--filters", "4", "8"))
    assert chief_code == 0, chief_log[-3000:]
    assert worker_code == 0, worker_log[-3000:]
    assert logged_digest(chief_log) == logged_digest(worker_log)
    with open(tmp_path / "runs" / "vqvae" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and "perplexity" in rows[0]
    assert all(math.isfinite(float(value)) for row in rows for value in row.values())
