"""`vae-tf study` end to end: real tiny runs trained and scored in child processes, in
parallel; a study stopped by SIGTERM and run again; a run that fails."""

import csv
import hashlib
import signal
import subprocess
import sys
import time

import pytest

from vae_tf.cli import main
from vae_tf.runs.preemption import PREEMPTED_STATUS

TINY = ["--samples", "quick", "--arch", "mlp", "--hidden-units", "8", "--latent-dim", "2", "--limit", "64",
        "--batch-size", "32", "--epochs", "1", "--validation-fraction", "0", "--iw-samples", "1",
        "--projector-examples", "0"]


def _rows(directory):
    with open(directory / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _snapshot(*paths):
    """{file: (mtime_ns, sha256)} of every file under `paths`."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*"))) if f.is_file()]
    return {str(f): (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files}


@pytest.mark.slow
def test_a_two_by_two_grid_in_two_processes_writes_every_score_and_the_box_plots(tmp_path, monkeypatch, caplog):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing may land in the working directory
    directory = tmp_path / "study"
    argv = ["study", str(directory), "--grid", "vae:beta=1,4", "--grid", "tcvae:tc_weight=1,4", "--seeds", "1",
            "--jobs", "2", *TINY]
    assert main(argv) == 0
    assert "4 runs, 0 done before, 4 to run, 2 at a time" in caplog.text  # the progress lines
    assert caplog.text.count(" started: train, scores") == caplog.text.count(" finished (train ") == 4
    caplog.clear()
    rows = _rows(directory)
    assert [(r["run"], r["model"], r["option"], r["status"]) for r in rows] == [
        ("vae-beta-1-seed0", "vae", "beta", "finished"), ("vae-beta-4-seed0", "vae", "beta", "finished"),
        ("tcvae-tc_weight-1-seed0", "tcvae", "tc_weight", "finished"),
        ("tcvae-tc_weight-4-seed0", "tcvae", "tc_weight", "finished")]
    for row in rows:
        assert 0 <= float(row["mig"]) <= 1 and 0 <= float(row["factor_vae.eval_accuracy"]) <= 1
        assert float(row["neg_elbo"]) > 0 and float(row["reconstruction"]) > 0
        assert (directory / row["log"]).is_file()
    assert (directory / "plots" / "scores.png").stat().st_size > 10_000
    written = sorted(p.name for p in directory.iterdir())
    assert written == ["logs", "plots", "results.csv", "runs", "scores", "study.json"]
    assert sorted(p.name for p in (directory / "runs").iterdir()) == sorted(r["run"] for r in rows)
    assert list(elsewhere.iterdir()) == []

    # Run again: every run is done, nothing is trained or scored again; the same table.
    before = _snapshot(directory / "runs", directory / "scores", directory / "logs")
    table = (directory / "results.csv").read_text()
    assert main(argv) == 0
    assert "4 runs, 4 done before, 0 to run" in caplog.text and " started" not in caplog.text
    assert _snapshot(directory / "runs", directory / "scores", directory / "logs") == before
    assert (directory / "results.csv").read_text() == table


@pytest.mark.slow
def test_a_study_stopped_by_sigterm_resumes_where_it_stopped(tmp_path, caplog):
    directory = tmp_path / "study"
    argv = ["study", str(directory), "--grid", "vae:beta=1,2,4", "--seeds", "1", "--jobs", "1", *TINY]
    study = subprocess.Popen([sys.executable, "-m", "vae_tf", *argv], stderr=subprocess.PIPE, text=True)
    first, second = directory / "scores" / "vae-beta-1-seed0.json", directory / "runs" / "vae-beta-2-seed0.partial"
    deadline = time.monotonic() + 900
    while not (first.is_file() and second.is_dir()) and study.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    study.send_signal(signal.SIGTERM)
    _, err = study.communicate(timeout=600)
    assert study.returncode == PREEMPTED_STATUS, err
    assert "vae-tf: stopped by SIGTERM" in err and "run the same command to resume" in err
    assert [(r["run"], r["status"]) for r in _rows(directory)] == [
        ("vae-beta-1-seed0", "finished"), ("vae-beta-2-seed0", "stopped"), ("vae-beta-4-seed0", "pending")]

    done = _snapshot(directory / "runs" / "vae-beta-1-seed0", first)
    assert main(argv) == 0
    assert "3 runs, 1 done before, 2 to run" in caplog.text
    assert _snapshot(directory / "runs" / "vae-beta-1-seed0", first) == done  # untouched
    assert [r["status"] for r in _rows(directory)] == ["finished"] * 3
    assert (directory / "logs" / "vae-beta-2-seed0.log").read_text().count("\n== ") == 3  # train, then train and scores
    assert not any(p.name.endswith(".partial") for p in (directory / "runs").iterdir())


@pytest.mark.slow
def test_a_run_that_fails_is_reported_with_its_log_and_the_study_exits_non_zero(tmp_path, capsys, caplog):
    directory = tmp_path / "study"
    # beta = 1e300 is a valid float setting, and infinite in the float32 loss: training stops on it.
    assert main(["study", str(directory), "--grid", "vae:beta=1e300", "--seeds", "1", *TINY]) == 2
    assert "vae-beta-1e300-seed0 failed in train (exit 2): see " in caplog.text
    assert "vae-tf: error: 1 of 1 runs failed (vae-beta-1e300-seed0)" in capsys.readouterr().err
    [row] = _rows(directory)
    assert row["status"] == "failed"
    assert row["error"].startswith("train exited with 2 (error: training stopped: the loss")
    assert "the loss became nan" in (directory / row["log"]).read_text()
    assert not (directory / "plots").exists()  # no finished run: no figure


@pytest.mark.parametrize("extra, message", [
    (["--jobs", "0"], "argument --jobs: must be an integer >= 1, got 0"),
    (["--grid", "vae:beta=one"], "vae-tf: error: --grid vae: beta takes float values, got 'one'"),
    (["--grid", "vae:nosuch=1"], "vae-tf: error: --grid vae: model 'vae' has no option 'nosuch'"),
    (["--grid", "vae:beta=1", "--model", "tcvae"], "vae-tf: error: the study sets --model of each run itself"),
    (["--grid", "vae:beta=1", "--seed", "2"], "vae-tf: error: the study sets --seed of each run itself"),
])
def test_bad_command_lines_give_one_error_and_write_nothing(tmp_path, capsys, extra, message):
    directory = tmp_path / "study"
    try:
        status = main(["study", str(directory), *extra])
    except SystemExit as exit:  # argparse's own refusals
        status = exit.code
    assert status == 2 and message in capsys.readouterr().err
    assert not directory.exists()
