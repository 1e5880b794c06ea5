"""The two-stochastic-layer VAE as a run: `vae-tf train --model hvae`, its likelihood
metrics, export, anomaly scores, and an exact resume after an interruption."""

import json

import pytest
import tensorflow as tf

from vae_tf.cli import main


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("hvae_runs")
    assert main(["train", *tiny_run, "--model", "hvae", "--train-samples", "2", "--top-latent-dim", "3",
                 "--top-hidden-units", "16", "--out", str(root), "--name", "hvae"]) == 0
    return root / "hvae"


def test_the_run_reports_both_bounds_and_serves_top_down(run, tmp_path):
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"neg_elbo", "iw_log_likelihood", "kl"} <= set(metrics)
    assert -metrics["iw_log_likelihood"] <= metrics["neg_elbo"] + 0.5  # the IWAE bound is the tighter
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["train_samples"] == 2 and config["model"]["top_latent_dim"] == 3
    assert main(["export", str(run), "--saved-models", str(tmp_path)]) == 0
    [version] = [p for p in tmp_path.rglob("saved_model.pb")]
    served = tf.saved_model.load(str(version.parent))
    assert {"serving_default", "reconstruct", "encode", "decode", "sample", "score"} <= set(served.signatures)
    images = served.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(1))["images"]
    assert images.shape == (3, 28, 28, 1)
    decoded = served.signatures["decode"](z=tf.zeros((2, 3)))["images"]  # z2, the top code
    assert decoded.shape == (2, 28, 28, 1)
    codes = served.signatures["encode"](images=tf.zeros((2, 28, 28, 1)))
    assert set(codes) == {"z2_mean", "z2_log_var", "z1_mean", "z1_log_var"}


def test_anomaly_scores_are_the_ones_it_has(run, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["score", str(run), "--iw-samples", "2", "--out", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["index", "label", "neg_elbo", "iw_nll", "reconstruction", "complexity"]
    assert main(["calibrate", str(run)]) == 0
    assert json.loads((run / "anomaly.json").read_text())["score"] == "reconstruction"
