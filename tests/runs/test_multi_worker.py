"""Multi-worker training: two `vae-tf train --strategy multi_worker` processes on
127.0.0.1 driven by TF_CONFIG, on real digits."""

import csv
import json
import math
import os
import re
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from vae_tf.analysis.feature_classifier import weights_sha256
from vae_tf.runs.training import train

TIMEOUT_S = 300


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_cluster(tiny_data, tmp_path, model, network=("--hidden-units", "32")):
    """Runs both workers to the end (or the timeout); returns their (returncode, stderr)."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    arguments = ["--model", model, *network, "--latent-dim", "2", "--iw-samples", "2",
                 "--batch-size", "256", "--epochs", "2", "--seed", "5", "--validation-fraction", "0.1"]
    processes = []
    try:
        for index in range(2):
            scratch = tmp_path / f"tmp{index}"
            scratch.mkdir()
            env = dict(os.environ, TMPDIR=str(scratch), TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "vae_tf.cli", "train", *tiny_data, *arguments,
                 "--strategy", "multi_worker", "--name", model,
                 "--out", str(tmp_path / "runs"), "--saved-models", str(tmp_path / "sm")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            ))
        return [(p.wait(TIMEOUT_S), p.communicate()[1]) for p in processes]
    finally:
        for process in processes:  # whatever happened, no worker outlives the test
            process.kill()
            process.wait()


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
