"""Names cannot escape the directories a user named, and --overwrite replaces only a
vae_tf run, checked before training and swapped so that a kill leaves a whole run."""

import json
import os
import subprocess
import sys

import pytest

from vae_tf.runs import training
from vae_tf.cli import main
from vae_tf.config import DataConfig, RunConfig
from vae_tf.serving.export import export_saved_model
from vae_tf.models.factory import make_model
from vae_tf.runs.run import check_name, recover, replace_run

HOSTILE = ["..", "../x", ".", "/abs", "a/b", "a\\b", "x\0y", "n" * 300, "", ".hidden", "a\n"]


@pytest.fixture
def scratch(tmp_path):
    """A scratch directory as in the issue: keep.txt, runs/ holding a run, a sentinel beside."""
    (tmp_path / "keep.txt").write_text("keep")
    (tmp_path / "runs").mkdir()
    (tmp_path / "abs").mkdir()
    (tmp_path / "abs" / "keep.txt").write_text("keep")
    fake_run(tmp_path / "runs" / "old")
    return tmp_path


def fake_run(path, marker="old"):
    """A directory carrying the run marker (a vae_tf config.json) and one artefact."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps(RunConfig(name=path.name).to_dict()))
    (path / "artefact.txt").write_text(marker)
    return path


def snapshot(root):
    return sorted((str(p.relative_to(root)), p.read_text() if p.is_file() else None)
                  for p in root.rglob("*"))


def hostile(name, scratch):
    return str(scratch / "abs") if name == "/abs" else name


@pytest.mark.parametrize("name", HOSTILE)
def test_check_name_refuses_every_hostile_name(name):
    with pytest.raises(ValueError, match=r"is not a valid name: use 1 to 128 letters"):
        check_name(name)


def test_check_name_accepts_plain_names():
    for name in ("r", "vae-mlp-fashion_mnist", "v1.2", "A" * 128):
        assert check_name(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_train_refuses_hostile_names_before_creating_anything(tiny_run, name, scratch, capsys):
    before = snapshot(scratch)
    argv = ["train", *tiny_run, "--name", hostile(name, scratch), "--out", str(scratch / "runs"), "--overwrite"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a valid name" in err[0], err
    assert snapshot(scratch) == before


@pytest.mark.parametrize("name", HOSTILE)
def test_python_api_refuses_hostile_names(name, scratch):
    with pytest.raises(ValueError, match="is not a valid name"):
        training.train(RunConfig(name=hostile(name, scratch), out=str(scratch / "runs")), overwrite=True)


@pytest.mark.parametrize("name", HOSTILE)
def test_export_refuses_hostile_names_before_creating_anything(name, scratch, capsys):
    before = snapshot(scratch)
    argv = ["export", str(scratch / "runs" / "old"), "--name", hostile(name, scratch),
            "--saved-models", str(scratch / "runs")]
    assert main(argv) == 2
    assert "is not a valid name" in capsys.readouterr().err
    assert snapshot(scratch) == before


def test_export_api_refuses_hostile_names(scratch):
    model = make_model("ae", "mlp", (4, 4, 1), latent_dim=2, hidden_units=(4,))
    before = snapshot(scratch)
    for name in HOSTILE:
        with pytest.raises(ValueError, match="is not a valid name"):
            export_saved_model(model, scratch / "runs", name=hostile(name, scratch))
    assert snapshot(scratch) == before


def test_the_default_run_name_obeys_the_rule_too():
    with pytest.raises(ValueError, match="default run name"):
        RunConfig(data=DataConfig(dataset="../escape"))


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if training would start (data loading is its first step)."""
    def refuse(config):
        raise AssertionError("data was loaded: the refusal came too late")
    monkeypatch.setattr(training, "load_config_data", refuse)


def test_overwrite_refuses_a_directory_that_is_not_a_run(tiny_run, scratch, no_training, capsys):
    notarun = scratch / "runs" / "notarun"
    notarun.mkdir()
    (notarun / "file.txt").write_text("mine")
    before = snapshot(scratch)
    assert main(["train", *tiny_run, "--name", "notarun", "--out", str(scratch / "runs"), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vae-tf: error: {notarun} is not a vae_tf run (no vae_tf config.json); remove it yourself"
    assert snapshot(scratch) == before


def test_overwrite_refuses_a_symlink_even_to_a_run(tiny_run, scratch, no_training, capsys):
    link = scratch / "runs" / "link"
    link.symlink_to(scratch / "runs" / "old")
    before = snapshot(scratch)
    assert main(["train", *tiny_run, "--name", "link", "--out", str(scratch / "runs"), "--overwrite"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert snapshot(scratch) == before and link.is_symlink()


def test_overwrite_refuses_a_partial_directory_that_is_not_a_run(tiny_run, scratch, no_training, capsys):
    partial = scratch / "runs" / "p.partial"
    partial.mkdir()
    (partial / "file.txt").write_text("mine")
    before = snapshot(scratch)
    assert main(["train", *tiny_run, "--name", "p", "--out", str(scratch / "runs"), "--overwrite"]) == 2
    assert "p.partial is not a vae_tf run" in capsys.readouterr().err
    assert snapshot(scratch) == before


def test_overwrite_replaces_a_real_run(tiny_run, scratch):
    runs = scratch / "runs"
    assert main(["train", *tiny_run, "--name", "r", "--out", str(runs)]) == 0
    first = json.loads((runs / "r" / "config.json").read_text())
    assert main(["train", *tiny_run, "--name", "r", "--out", str(runs), "--overwrite", "--seed", "3"]) == 0
    assert json.loads((runs / "r" / "config.json").read_text())["training"]["seed"] == 3 != first["training"]["seed"]
    assert (runs / "r" / "model.keras").is_file()
    assert sorted(p.name for p in runs.iterdir()) == ["old", "r"]  # nothing left aside
    assert (scratch / "keep.txt").read_text() == "keep"


KILL_AT = """
import os, shutil, sys
from vae_tf.runs import run
steps, kill_at = [0], int(sys.argv[3])
def killing(step):
    def wrapped(*args):
        steps[0] += 1
        if steps[0] == kill_at:
            os._exit(9)  # as SIGKILL would: no handler runs
        step(*args)
    return wrapped
run.os.rename, run.shutil.rmtree = killing(os.rename), killing(shutil.rmtree)
run.replace_run(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("kill_at, survivor", [(1, "old"), (2, "old"), (3, "new")])
def test_a_kill_during_the_swap_leaves_one_whole_run(tmp_path, kill_at, survivor):
    """Killed before the old run moves aside, before the new one moves in, or before the
    old one is deleted: every directory left is a whole run, and `recover` (which the next
    train calls) leaves exactly one at the run's name."""
    final = fake_run(tmp_path / "r", "old")
    partial = fake_run(tmp_path / "r.partial", "new")
    (tmp_path / "keep.txt").write_text("keep")
    process = subprocess.run([sys.executable, "-c", KILL_AT, str(partial), str(final), str(kill_at)],
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert process.returncode == 9
    runs = {p.name: (p / "artefact.txt").read_text() for p in tmp_path.iterdir() if p.is_dir()}
    # Every run present is whole, and one of them is the old or the new run.
    assert all((tmp_path / name / "config.json").is_file() for name in runs)
    assert sorted(runs.values()) == ["new", "old"]
    recover(final)
    assert (final / "artefact.txt").read_text() == survivor
    assert not (tmp_path / ".r.replaced").exists()
    assert (tmp_path / "keep.txt").read_text() == "keep"


def test_a_failed_swap_puts_the_old_run_back(tmp_path, monkeypatch):
    final = fake_run(tmp_path / "r", "old")
    missing = tmp_path / "r.partial"  # renaming it in fails
    with pytest.raises(FileNotFoundError):
        replace_run(missing, final)
    assert (final / "artefact.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_no_unsafe_loading_anywhere_in_the_package():
    import pathlib

    package = pathlib.Path(training.__file__).parents[1]
    for path in package.rglob("*.py"):
        text = path.read_text()
        assert "safe_mode=False" not in text and "allow_pickle=True" not in text, path
