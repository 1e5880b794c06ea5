"""The `vae-tf` command end to end on real Fashion-MNIST images (the small_dir fixture), kept tiny."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vae_tf.cli import main

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def train(tiny_run):
    """`train(root, *extra)`: the exit status of a tiny `vae-tf train` into root/runs and root/sm."""
    return lambda root, *extra: main(["train", *tiny_run, "--export", "--out", str(root / "runs"),
                                      "--saved-models", str(root / "sm"), *extra])


@pytest.fixture(scope="module")
def vae_run(train, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert train(root, "--name", "vae") == 0
    return root / "runs" / "vae"


def test_train_writes_a_complete_run_directory(vae_run, capsys):
    for name in ("config.json", "history.csv", "model.keras", "metrics.json"):
        assert (vae_run / name).is_file()
    assert list((vae_run / "logs" / "train").glob("events*"))
    assert list((vae_run / "logs" / "images").glob("events*"))
    plots = {p.stem for p in (vae_run / "plots").glob("*.png")}
    assert {"reconstructions", "samples", "latent_scatter", "manifold", "interpolations",
            "training_curves"} <= plots
    metrics = json.loads((vae_run / "metrics.json").read_text())
    assert metrics["neg_elbo"] == pytest.approx(metrics["reconstruction"] + metrics["kl"])
    assert metrics["iw_log_likelihood"] > -metrics["neg_elbo"] - 5
    config = json.loads((vae_run / "config.json").read_text())
    assert config["model"]["latent_dim"] == 2 and config["data"]["dataset"] == "idx"
    with open(vae_run / "history.csv") as f:
        assert {"loss", "kl", "beta", "val_loss"} <= set(next(csv.reader(f)))


def test_existing_run_is_refused_and_left_intact(tiny_run, vae_run, capsys):
    before = (vae_run / "model.keras").read_bytes()
    assert main(["train", *tiny_run, "--out", str(vae_run.parent), "--name", "vae"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (vae_run / "model.keras").read_bytes() == before


def test_overwrite_replaces_a_run_only_when_the_new_one_succeeds(train, tmp_path, capsys):
    assert train(tmp_path, "--name", "r") == 0
    run = tmp_path / "runs" / "r"
    config = run / "config.json"
    # A failing retrain (unknown data set) leaves the old run as it was.
    assert main(["train", "--dataset", "nope", "--out", str(tmp_path / "runs"), "--name", "r",
                 "--overwrite"]) == 2
    assert json.loads(config.read_text())["data"]["dataset"] == "idx"
    assert train(tmp_path, "--name", "r", "--overwrite", "--seed", "5") == 0
    assert json.loads(config.read_text())["training"]["seed"] == 5


def test_evaluate_prints_and_writes_metrics(vae_run, capsys):
    assert main(["evaluate", str(vae_run), "--iw-samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "neg_elbo" in out and "iw_log_likelihood" in out
    assert json.loads((vae_run / "metrics.json").read_text())["iw_samples"] == 3


def test_sample_encode_score_plot(vae_run, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["sample", str(vae_run), "-n", "16", "--out", str(grid)]) == 0
    assert Image.open(grid).size[0] > 200
    z_path = tmp_path / "z.npy"
    assert main(["encode", str(vae_run), "--out", str(z_path)]) == 0
    z, labels = np.load(z_path), np.load(tmp_path / "z_labels.npy")
    assert z.shape == (2000, 2) and labels.shape == (2000,)
    scores = tmp_path / "scores.csv"
    assert main(["score", str(vae_run), "--out", str(scores), "--iw-samples", "2"]) == 0
    rows = list(csv.DictReader(open(scores)))
    assert len(rows) == 2000 and float(rows[0]["iw_nll"]) > 0 and "regret" in rows[0]
    (vae_run / "plots" / "samples.png").unlink()
    assert main(["plot", str(vae_run)]) == 0
    assert (vae_run / "plots" / "samples.png").is_file()


def test_cvae_run_draws_the_class_grid_and_samples_a_class(train, tmp_path, capsys):
    assert train(tmp_path, "--name", "c", "--model", "cvae", "--arch", "conv", "--filters", "4", "8") == 0
    run = tmp_path / "runs" / "c"
    assert (run / "plots" / "class_grid.png").is_file()
    assert main(["sample", str(run), "-n", "8", "--label", "3", "--out", str(tmp_path / "3.png")]) == 0
    saved = tmp_path / "sm" / "c" / "1"
    assert main(["sample", "--saved-model", str(saved), "-n", "8", "--label", "3",
                 "--out", str(tmp_path / "3sm.png")]) == 0
    assert main(["sample", "--saved-model", str(saved), "--out", str(tmp_path / "x.png")]) == 2
    assert "--label is required" in capsys.readouterr().err


def test_train_exports_a_saved_model_and_export_adds_versions(vae_run, tmp_path):
    saved_models = vae_run.parent.parent / "sm"
    assert (saved_models / "vae" / "1" / "saved_model.pb").is_file()
    assert main(["export", str(vae_run), "--saved-models", str(saved_models), "--tflite"]) == 0
    assert (saved_models / "vae" / "2" / "decoder.tflite").is_file()
    assert main(["export", str(vae_run), "--saved-models", str(tmp_path), "--name", "served"]) == 0
    assert (tmp_path / "served" / "1" / "saved_model.pb").is_file()
    grid = tmp_path / "from_saved_model.png"
    assert main(["sample", "--saved-model", str(saved_models / "vae" / "1"), "-n", "16",
                 "--out", str(grid)]) == 0
    assert Image.open(grid).size[0] > 200


def test_no_export_writes_no_saved_model(train, tmp_path):
    assert train(tmp_path, "--name", "n", "--no-export") == 0
    assert not (tmp_path / "sm").exists()


def test_ae_run_and_its_limits(train, tmp_path, capsys):
    assert train(tmp_path, "--name", "a", "--model", "ae") == 0
    run = tmp_path / "runs" / "a"
    assert set(json.loads((run / "metrics.json").read_text())) == {"reconstruction", "examples"}
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png")]) == 2
    assert "no prior" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "/nonexistent/run"], "not a run directory"),
        (["export", "/nonexistent/run"], "not a run directory"),
        (["sample", "--saved-model", "/nonexistent/sm"], "not a SavedModel directory"),
        (["sample"], "either RUN_DIR or --saved-model"),
    ],
)
def test_bad_input_fails_with_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vae-tf: error:") and message in err[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        # one per rule of vae_tf.config.validate, each naming the option and the value
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--latent-dim", "0"], "--latent-dim must be >= 1, got 0"),
        (["--hidden-units", "32", "0"], "--hidden-units must be >= 1, got (32, 0)"),
        (["--filters", "-4"], "--filters must be >= 1, got (-4,)"),
        (["--iw-samples", "0"], "--iw-samples must be >= 1, got 0"),
        (["--cpu-replicas", "0"], "--cpu-replicas must be >= 1, got 0"),
        (["--kl-warmup-epochs", "-1"], "--kl-warmup-epochs must be >= 0, got -1"),
        (["--lr", "0"], "--lr must be > 0, got 0.0"),
        (["--beta", "-1"], "--beta must be >= 0.0, got -1.0"),
        (["--free-bits", "-0.5"], "--free-bits must be >= 0.0, got -0.5"),
        (["--validation-fraction", "1"], "--validation-fraction must be in [0, 1), got 1.0"),
        (["--validation-fraction", "-0.1"], "--validation-fraction must be >= 0.0, got -0.1"),
        (["--sigma", "0.1"], "--sigma applies only to --likelihood gaussian, not 'bernoulli'"),
        (["--learn-sigma"], "--learn-sigma applies only to --likelihood gaussian, not 'bernoulli'"),
        (["--likelihood", "gaussian", "--sigma", "-1"], "--sigma must be > 0, got -1.0"),
        (["--model", "ae", "--beta", "2"], "--beta applies only to variational models, not --model ae"),
        (["--model", "ae", "--free-bits", "1"], "--free-bits applies only to variational models"),
        (["--dataset", "idx"], "--dataset idx needs --data-dir"),
        (["--dataset", "folder"], "--dataset folder needs --data-dir, a directory of images"),
        (["--dataset", "folder", "--data-dir", "IMAGES"], "--dataset folder needs --image-size H W"),
        (["--model", "cvae", "--dataset", "folder", "--data-dir", "IMAGES", "--image-size", "8", "8"],
         "--model cvae needs labelled data, but --data-dir"),
        (["--name", "../x"], "--name '../x' is not a valid name"),
        (["--out", ""], "--out must name a directory"),
        # found while loading the data, still before anything is written
        (["--dataset", "idx", "--data-dir", "/nonexistent"], "/nonexistent: no such directory"),
        (["--dataset", "no_such_set"], "unknown data set"),
    ],
)
def test_bad_train_settings_fail_with_one_line_and_leave_nothing(tiny_data, tiny_settings, argv, message, tmp_path, capsys):
    images = tmp_path / "images"  # an image folder without class sub-folders
    images.mkdir()
    Image.new("L", (8, 8)).save(images / "a.png")
    argv = [str(images) if a == "IMAGES" else a for a in argv]
    data = [] if {"--dataset", "--data-dir"} & set(argv) else tiny_data
    assert main(["train", *data, *tiny_settings, "--out", str(tmp_path / "runs"), "--no-export", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vae-tf: error:") and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # no runs/, no NAME.partial


def test_a_bad_flag_then_the_corrected_command_succeeds(train, tmp_path, capsys):
    assert train(tmp_path, "--name", "x", "--beta", "-1") == 2
    assert "--beta must be >= 0.0, got -1.0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    assert train(tmp_path, "--name", "x", "--beta", "1", "--no-export") == 0
    assert (tmp_path / "runs" / "x" / "model.keras").is_file()


def test_argument_type_errors_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "two"])
    assert exit_info.value.code == 2
    assert "--epochs: invalid int value: 'two'" in capsys.readouterr().err


def test_version_prints_the_installed_package_version(capsys):
    import importlib.metadata

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"vae-tf {importlib.metadata.version('vae_tf')}"


def test_train_options_come_from_the_config_fields():
    import dataclasses

    from vae_tf.cli import build_parser
    from vae_tf.config import RunConfig, flag, option_fields
    from vae_tf.models import registry

    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.option_strings[0]: a for a in train_parser._actions if a.option_strings}
    for section, field in option_fields():
        action = actions[flag(field)]
        assert field.metadata["help"] in action.help
        assert field.default in (None, False) or f"(default: {field.default})" in action.help
    assert tuple(actions["--model"].choices) == registry.names()
    parsed = train_parser.parse_args(["--latent-dim", "3", "--hidden-units", "8", "8", "--learn-sigma"])
    assert dataclasses.asdict(RunConfig().model)["latent_dim"] == 20 and parsed.__dict__["model.latent_dim"] == 3


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "vae_tf"],
    [sys.executable, "-m", "vae_tf.cli"],
    # what the console script pip generates does: `vae-tf` as argv[0], then console_main
    [sys.executable, "-c", "import sys; sys.argv[0] = 'vae-tf'; from vae_tf.cli import console_main; console_main()"],
])
def test_the_command_is_quiet_and_fails_cleanly(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([*command, "evaluate", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == f"vae-tf: error: {tmp_path}: not a run directory (no config.json)"
    assert result.stdout == ""


def test_train_with_mirrored_strategy_on_two_cpu_replicas(tiny_run, tmp_path):
    # A fresh process: the CPU can only be split before TensorFlow starts.
    result = subprocess.run(
        [sys.executable, "-m", "vae_tf", "train", *tiny_run, "--strategy", "mirrored",
         "--cpu-replicas", "2", "--out", str(tmp_path), "--name", "m", "--no-export"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "strategy: mirrored (MirroredStrategy) with 2 replica(s)" in result.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (config["runtime"]["strategy"], config["runtime"]["cpu_replicas"]) == ("mirrored", 2)
    assert np.isfinite(json.loads((tmp_path / "m" / "metrics.json").read_text())["neg_elbo"])


def test_unfinished_run_is_named_as_such(vae_run, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((vae_run / "config.json").read_text())
    for argv in (["sample", str(unfinished)], ["export", str(unfinished)], ["evaluate", str(unfinished)]):
        assert main(argv) == 2
        assert "no model.keras (the run did not finish)" in capsys.readouterr().err
