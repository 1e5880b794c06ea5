"""Every command that writes into a finished run holds its lock: with the run locked by a
live process, each refuses in one line naming the holder, exit status 2, nothing written."""

import os
import socket
import subprocess
import sys

import pytest

from vae_tf.cli import main

AE = ["--model", "ae", "--hidden-units", "16", "--latent-dim", "2"]
VQ = ["--model", "vqvae", "--arch", "conv", "--num-embeddings", "8", "--embedding-dim", "2",
      "--filters", "4", "8"]


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("locked")
    assert main(["train", *tiny_run, *AE, "--out", str(root), "--name", "ae"]) == 0
    assert main(["train", *tiny_run, *VQ, "--out", str(root), "--name", "vq"]) == 0
    return root


def snapshot(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("run, argv", [
    ("ae", ["fit-sampler", "--components", "2"]),
    ("ae", ["calibrate", "--score", "reconstruction"]),
    ("ae", ["evaluate", "--iw-samples", "2"]),
    ("ae", ["plot"]),
    ("ae", ["export", "--saved-models", "{root}/sm"]),
    ("vq", ["train-prior", "--epochs", "1", "--filters", "4", "--layers", "1"]),
])
def test_a_command_writing_into_a_locked_run_is_refused(runs, run, argv, capsys):
    argv = [a.format(root=runs) for a in argv]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = runs / f".{run}.lock"
    try:
        lock.write_text(f"{holder.pid} {socket.gethostname()} token\n")
        before = snapshot(runs)
        capsys.readouterr()
        status = main([argv[0], str(runs / run), *argv[1:]])
        after = snapshot(runs)
    finally:
        holder.kill()
        holder.wait()
        lock.unlink()
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"vae-tf: error: {runs / run} is in use by process {holder.pid} "
                             f"on {socket.gethostname()}")
    assert after == before  # nothing written, nothing changed
    assert main([argv[0], str(runs / run), *argv[1:]]) == 0  # lock gone: the same command works


def test_plot_writes_everything_while_holding_the_lock(runs, monkeypatch):
    """The plots and the Embedding Projector are both written before the lock is released."""
    from vae_tf.runs import training

    lock, held = runs / ".ae.lock", {}

    def holding(name, write):
        def wrapped(*args, **kwargs):
            held[name] = lock.is_file() and lock.read_text().split()[0] == str(os.getpid())
            return write(*args, **kwargs)
        return wrapped

    for name in ("draw_plots", "write_projector"):
        monkeypatch.setattr(training, name, holding(name, getattr(training, name)))
    assert main(["plot", str(runs / "ae"), "--projector-examples", "20"]) == 0
    assert held == {"draw_plots": True, "write_projector": True}
    assert (runs / "ae" / "logs" / "projector" / "projector_config.pbtxt").is_file()
