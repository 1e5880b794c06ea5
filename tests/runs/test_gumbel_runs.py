"""The Gumbel-softmax VAE as a run: `vae-tf train --model gumbel`, its likelihood figures,
export with categorical codes, anomaly scores, the projector, and an exact resume of
weights and temperature after an interruption."""

import json

import numpy as np
import pytest
import tensorflow as tf

from vae_tf.cli import main

OPTIONS = ["--gumbel-categories", "3", "--gumbel-anneal-every", "1", "--gumbel-anneal-rate", "0.01"]


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("gumbel_run")
    assert main(["train", *tiny_run, "--model", "gumbel", *OPTIONS, "--out", str(root), "--name", "gumbel",
                 "--projector-examples", "50"]) == 0
    return root / "gumbel"


def test_a_run_reports_its_likelihood_bounds_and_the_temperature(run):
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"neg_elbo", "iw_log_likelihood", "kl", "reconstruction"} <= set(metrics)
    assert -metrics["iw_log_likelihood"] <= metrics["neg_elbo"] + 0.5  # the IWAE bound is the tighter
    history = (run / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    assert {"loss", "reconstruction", "kl", "temperature"} <= set(header)
    assert float(history[-1].split(",")[header.index("temperature")]) < 1.0  # annealed every step
    assert (run / "logs" / "projector" / "projector_config.pbtxt").is_file()
    assert (run / "plots" / "samples.png").is_file()


def test_export_serves_category_probabilities_and_one_hot_samples(run, tmp_path):
    assert main(["export", str(run), "--saved-models", str(tmp_path)]) == 0
    [version] = [p for p in tmp_path.rglob("saved_model.pb")]
    served = tf.saved_model.load(str(version.parent))
    assert {"serving_default", "reconstruct", "encode", "decode", "sample", "score"} <= set(served.signatures)
    codes = served.signatures["encode"](images=tf.zeros((2, 28, 28, 1)))
    assert set(codes) == {"probabilities", "one_hot", "log_probabilities"}
    np.testing.assert_allclose(codes["probabilities"].numpy().reshape(2, 2, 3).sum(axis=-1), 1.0, rtol=1e-5)
    images = served.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(1))["images"]
    assert images.shape == (3, 28, 28, 1)


def test_anomaly_scores_are_the_ones_a_categorical_model_has(run, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["score", str(run), "--iw-samples", "2", "--out", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["index", "label", "neg_elbo", "iw_nll", "reconstruction", "complexity"]
    assert main(["score", str(run), "--score", "regret", "--out", str(tmp_path / "x.csv")]) == 2
    assert "this model supports" in capsys.readouterr().err
    assert main(["calibrate", str(run)]) == 0
    assert json.loads((run / "anomaly.json").read_text())["score"] == "reconstruction"
