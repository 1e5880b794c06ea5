"""scripts/peer_benchmark.py: its options, and its vae_tf measurement end to end (PyTorch
and JAX are not dependencies, so their runs are not part of the suite)."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "peer_benchmark.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_peers_need_a_python_that_has_them(tmp_path):
    done = run("--only", "vae_tf", "torch")
    assert done.returncode == 2 and "--peer-python is required for torch" in done.stderr
    done = run("--peer-python", str(tmp_path / "missing"))
    assert done.returncode == 2 and f"--peer-python {tmp_path / 'missing'}: not an executable file" in done.stderr


@pytest.mark.slow
def test_times_vae_tf_and_reports_its_loss(tmp_path):
    out = tmp_path / "peers.json"
    done = run("--only", "vae_tf", "--examples", "1024", "--epochs", "1", "--rounds", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("vae_tf "))
    assert row.split()[2].endswith("%") and row.split()[3] == "1.00x"
    rounds = json.loads(out.read_text())["rounds"]
    assert len(rounds) == 2
    for result in rounds:
        assert result["vae_tf"]["images_per_s"] > 0 and result["vae_tf"]["matmul_gflops"] > 0
        assert 100 < result["vae_tf"]["last_epoch_loss"] < 600  # nats per Fashion-MNIST image
