"""`--dataset dsprites`, `--limit`, `vae-tf disentanglement`, traversals.png and the
Embedding Projector from the command line, end to end and tiny."""

import csv
import json

import pytest

from vae_tf.cli import main
from vae_tf.analysis.disentanglement import METRICS
from vae_tf.runs.disentanglement import QUICK_SAMPLES, evaluate_run
from vae_tf.config import ConfigError, DataConfig, RunConfig, TrainingConfig


@pytest.fixture(scope="module")
def tiny(tiny_settings):
    """`tiny_settings` with a 3-D code, one importance sample and batches of 128."""
    return [*tiny_settings, "--hidden-units", "16", "--latent-dim", "3", "--iw-samples", "1", "--batch-size", "128"]


@pytest.fixture(scope="module")
def dsprites_run(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("dsprites")
    assert main(["train", "--dataset", "dsprites", "--limit", "256", "--validation-fraction", "0",
                 *tiny, "--projector-examples", "40", "--out", str(root), "--name", "d"]) == 0
    return root / "d"


@pytest.fixture(scope="module")
def fashion_run(tiny, tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("fashion")
    assert main(["train", *tiny_data, "--limit", "300", *tiny,
                 "--projector-examples", "0", "--out", str(root), "--name", "f"]) == 0
    return root / "f"


def test_dsprites_run_with_limit_draws_traversals_and_a_projector(dsprites_run):
    config = json.loads((dsprites_run / "config.json").read_text())
    assert config["data"] == {**config["data"], "dataset": "dsprites", "limit": 256}
    with open(dsprites_run / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 1
    plots = {p.stem for p in (dsprites_run / "plots").glob("*.png")}
    assert {"reconstructions", "traversals", "latent_scatter", "samples"} <= plots
    projector = dsprites_run / "logs" / "projector"
    assert (projector / "projector_config.pbtxt").is_file() and (projector / "sprite.png").is_file()
    # Factor vectors are not one label per point: the metadata holds the indices alone.
    assert (projector / "metadata.tsv").read_text().split() == [str(i) for i in range(40)]


def test_score_writes_dsprites_factor_vectors_as_labels(dsprites_run, tmp_path):
    out = tmp_path / "scores.csv"
    assert main(["score", str(dsprites_run), "--iw-samples", "1", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 10_000 and len(rows[0]["label"].split()) == 5
    assert all(0 <= int(v) < 40 for row in rows[:50] for v in row["label"].split())


def test_disentanglement_quick_writes_every_score(dsprites_run, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["disentanglement", str(dsprites_run), "--quick", "--seed", "1", "--out", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["samples"] == QUICK_SAMPLES and scores["seed"] == 1
    values = [*scores["summary"].values(), scores["dci"]["completeness"], scores["beta_vae"]["train_accuracy"]]
    assert list(scores["summary"]) == list(METRICS) and all(0 <= v <= 1 for v in values)
    assert len(scores["dci"]["importance"]) == 3  # latent dims x 5 factors
    printed = capsys.readouterr().out
    assert all(label in printed for label in ("MIG", "beta-VAE", "Modularity", "Explicitness", "IRS"))
    # A subset draws what the whole set drew for those metrics (each has its own random stream).
    subset = tmp_path / "subset.json"
    assert main(["disentanglement", str(dsprites_run), "--quick", "--seed", "1", "--metrics", "irs", "mig",
                 "--out", str(subset)]) == 0
    assert json.loads(subset.read_text())["summary"] == {"mig": scores["mig"], "irs": scores["irs"]["irs"]}


def test_evaluate_run_returns_the_scores_without_writing(dsprites_run, tmp_path):
    scores = evaluate_run(dsprites_run, seed=0, samples=QUICK_SAMPLES, metrics=["modularity", "explicitness"])
    assert set(scores["summary"]) == {"modularity", "explicitness"} and scores["samples"] == QUICK_SAMPLES
    with pytest.raises(ValueError, match="unknown metrics \\['migg'\\]"):
        evaluate_run(dsprites_run, metrics=["migg"])
    with pytest.raises(ValueError, match="samples must be one of"):
        evaluate_run(dsprites_run, samples="paperr")


def test_disentanglement_refuses_a_run_not_on_dsprites(fashion_run, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["disentanglement", str(fashion_run), "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be scored: --dataset idx has no known ground-truth factors" in err[0]
    assert "these do: ('dsprites'" in err[0]
    assert not out.exists()


def test_projector_examples_zero_writes_none_and_plot_adds_it(fashion_run, capsys):
    projector = fashion_run / "logs" / "projector"
    assert not projector.exists()
    (fashion_run / "plots" / "traversals.png").unlink()
    assert main(["plot", str(fashion_run), "--projector-examples", "30"]) == 0
    assert (fashion_run / "plots" / "traversals.png").is_file()
    rows = (projector / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "label\tindex" and len(rows) == 31
    assert (projector / "sprite.png").is_file() and (projector / "projector_config.pbtxt").is_file()
    assert "tensorboard --logdir" in capsys.readouterr().out


def test_limit_subsets_the_training_examples(fashion_run):
    # small_dir: 10,000 images, 2,000 test and 10% of the rest validation; 300 train
    # examples in batches of 128 are 3 steps per epoch.
    config = json.loads((fashion_run / "config.json").read_text())
    assert config["data"]["limit"] == 300 and config["training"]["projector_examples"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "--limit must be >= 1, got 0"),
    (["--projector-examples", "-1"], "--projector-examples must be >= 0, got -1"),
    (["--dataset", "idx", "--data-dir", "SMALL_DIR", "--limit", "100000"],
     "limit 100000 is more than the"),
])
def test_bad_new_settings_fail_with_one_line_and_leave_nothing(tiny, argv, message, tmp_path, capsys, small_dir):
    argv = [str(small_dir) if a == "SMALL_DIR" else a for a in argv]
    assert main(["train", *tiny, "--out", str(tmp_path / "runs"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists()


def test_new_config_fields_validate_and_round_trip():
    with pytest.raises(ConfigError, match="--limit must be >= 1, got 0"):
        RunConfig(data=DataConfig(limit=0))
    with pytest.raises(ConfigError, match="--limit must be int"):
        RunConfig(data=DataConfig(limit=2.5))
    with pytest.raises(ConfigError, match="--projector-examples must be >= 0"):
        RunConfig(training=TrainingConfig(projector_examples=-5))
    config = RunConfig(data=DataConfig(dataset="dsprites", limit=50), training=TrainingConfig(projector_examples=0))
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert RunConfig().data.limit is None and RunConfig().training.projector_examples == 2000


def test_plot_and_disentanglement_argument_errors_exit_with_usage(capsys):
    for argv in (["plot", "run", "--projector-examples", "-1"],
                 ["disentanglement", "run", "--quick", "--paper-samples"],
                 ["disentanglement", "run", "--metrics", "migg"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
