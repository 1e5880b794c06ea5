"""Multi-worker training: two `vae-tf train --strategy multi_worker` processes on
127.0.0.1 driven by TF_CONFIG, on real digits."""

import csv
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from helpers import tf_config
from vae_tf.benchmarks.scaling import free_ports
from vae_tf.analysis.feature_classifier import weights_sha256
from vae_tf.runs.checkpoints import MANIFEST, newest_whole
from vae_tf.runs.preemption import PREEMPTED_STATUS
from vae_tf.runs.run import read_history
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


def stop(launches):
    """Kills every worker still running, as a scheduler would, and reaps it."""
    for process, _ in launches:
        process.kill()
        process.wait()


def finish(launches, timeout=TIMEOUT_S):
    """Waits for every worker to end; returns their (returncode, stderr). Whatever happens,
    no worker outlives the call."""
    try:
        return [(process.wait(timeout), log.read_text()) for process, log in launches]
    finally:
        stop(launches)


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


# A run that resumes exactly (deterministic ops, a fresh Bernoulli draw per batch, sampling
# noise from each worker's seed generator), with a checkpoint every 4 steps: 2,000
# examples, 16 global batches an epoch.
RESUMABLE = ["--model", "vae", "--hidden-units", "32", "--latent-dim", "2", "--iw-samples", "2",
             "--batch-size", "128", "--epochs", "3", "--binarize", "dynamic", "--deterministic", "--limit", "2000",
             "--seed", "5", "--checkpoint-every-steps", "4", "--name", "x"]
KILL_AT = "train-batch:26"  # step 10 of the second epoch; its last checkpoint at step 8
# A survivor's collectives abort soon after its peer's death (measured: 10 s and 22 s);
# past this the test fails, and kills it as a scheduler would.
SURVIVOR_WAIT_S = 120


def resumable(tiny_data, tmp_path):
    return [*tiny_data, *RESUMABLE, "--out", str(tmp_path / "runs"), "--saved-models", str(tmp_path / "sm")]


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    """The final weights digest of an uninterrupted two-worker run, and its history."""
    out = tmp_path_factory.mktemp("uninterrupted")
    results = finish(start_cluster(out, resumable(tiny_data, out), free_ports(2)))
    for code, log in results:
        assert code == 0, log[-3000:]
    return logged_digest(results[0][1]), read_history(out / "runs" / "x")


@pytest.mark.slow
@pytest.mark.parametrize("killed", [0, 1], ids=["chief", "non-chief"])
def test_a_worker_killed_mid_epoch_then_the_same_cluster_resumes_exactly(tiny_data, tmp_path, killed,
                                                                         uninterrupted):
    """SIGKILL one worker of two in the middle of an epoch; the other stops on its own.
    The same two commands again resume every worker after the chief's last checkpoint and
    end with weights bit-identical to an uninterrupted two-worker run."""
    arguments, ports = resumable(tiny_data, tmp_path), free_ports(2)
    launches = start_cluster(tmp_path, arguments, ports, kill=(killed, KILL_AT))
    (victim, _), (survivor, survivor_log) = launches[killed], launches[1 - killed]
    try:
        assert victim.wait(TIMEOUT_S) == -signal.SIGKILL, launches[killed][1].read_text()[-3000:]
        assert survivor.wait(SURVIVOR_WAIT_S) == 2  # vae-tf: error
    finally:
        stop(launches)
    assert "error: a worker of the cluster stopped during training (Collective ops is aborted by: " \
        in survivor_log.read_text().splitlines()[-1]
    checkpoint = newest_whole(tmp_path / "runs" / "x.partial" / "backup")
    assert (checkpoint.epoch, checkpoint.step) == (1, 8)

    results = finish(start_cluster(tmp_path, arguments, ports))  # the same commands, no kill
    for code, log in results:
        assert code == 0, log[-3000:]
        assert "resuming x after epoch 1 of 3, step 8 of epoch 2" in log  # on every worker
        assert logged_digest(log) == uninterrupted[0]  # bit-identical weights
    chief_log = results[0][1]
    assert ("took over the lock" in chief_log) == (killed == 0)  # a killed chief's lock is stale

    # The chief wrote the run and its SavedModel once; each epoch is logged once.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["x"]
    assert weights_sha256(keras.saving.load_model(tmp_path / "runs" / "x" / "model.keras")) == uninterrupted[0]
    assert sorted(p.name for p in (tmp_path / "sm" / "x").iterdir()) == ["1"]
    with open(tmp_path / "runs" / "x" / "history.csv", newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2"]
    # The epoch means match to float32 rounding (measured: 1.3e-7 relative at most), not bit
    # for bit: the resumed epoch's running sums restart split evenly between the workers,
    # and Keras's batch means come out 1 ulp apart between processes now and then
    # (tests/runs/test_preemption.py).
    resumed, expected = read_history(tmp_path / "runs" / "x"), uninterrupted[1]
    assert resumed.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(resumed[key], expected[key], rtol=1e-6, err_msg=key)


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_one_step_and_the_same_cluster_resumes_exactly(tiny_data, tmp_path,
                                                                                           uninterrupted):
    """A preemption notice to the non-chief: both workers agree to stop at the same step
    (`checkpoints.STOP_VOTE_STEPS`, here each epoch's end), the chief saves, both exit 75;
    the same commands resume as after a kill."""
    arguments, ports = resumable(tiny_data, tmp_path), free_ports(2)
    launches = start_cluster(tmp_path, arguments, ports)
    manifest = tmp_path / "runs" / "x.partial" / "backup" / MANIFEST
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not manifest.exists():  # the first checkpoint, at step 4 of the first epoch
            assert time.monotonic() < deadline and launches[0][0].poll() is None, launches[0][1].read_text()[-3000:]
            time.sleep(0.05)
        launches[1][0].send_signal(signal.SIGTERM)
    except BaseException:
        stop(launches)
        raise
    (chief_code, chief_log), (worker_code, worker_log) = finish(launches)
    assert (chief_code, worker_code) == (PREEMPTED_STATUS, PREEMPTED_STATUS), chief_log[-3000:] + worker_log[-3000:]
    assert "stopped by another worker's notice: checkpoint saved after epoch " in chief_log
    assert "stopped by SIGTERM after epoch " in worker_log and "the chief saved the checkpoint" in worker_log
    stopped = newest_whole(manifest.parent)
    assert stopped.epoch in (1, 2) and stopped.step == 0

    results = finish(start_cluster(tmp_path, arguments, ports))
    for code, log in results:
        assert code == 0, log[-3000:]
        assert f"resuming x after epoch {stopped.epoch} of 3" in log
        assert logged_digest(log) == uninterrupted[0]
