"""WAE-MMD and InfoVAE as runs: `vae-tf train --model wae|infovae`, what they evaluate
(no likelihood a WAE does not have), export, anomaly scores, the projector, sample
quality, and an exact resume after an interruption."""

import json

import pytest
import tensorflow as tf

from vae_tf.analysis.feature_classifier import ClassifierSpec
from vae_tf.cli import main
from vae_tf.runs import classifier_cache

TINY_SPEC = ClassifierSpec(filters=(4,), feature_units=8, epochs=1, batch_size=256)


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("mmd_runs")
    for kind in ("wae", "infovae"):
        assert main(["train", *tiny_run, "--model", kind, "--out", str(root), "--name", kind,
                     "--projector-examples", "50"]) == 0
    return root


def test_wae_reports_reconstruction_and_infovae_its_likelihood_bounds(runs):
    wae = json.loads((runs / "wae" / "metrics.json").read_text())
    assert "reconstruction" in wae and not {"neg_elbo", "iw_log_likelihood", "kl"} & set(wae)
    info = json.loads((runs / "infovae" / "metrics.json").read_text())
    assert {"neg_elbo", "iw_log_likelihood", "kl"} <= set(info)
    assert -info["iw_log_likelihood"] <= info["neg_elbo"] + 0.5  # the IWAE bound is the tighter
    history = (runs / "wae" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "reconstruction", "mmd"} <= set(history)
    for kind in ("wae", "infovae"):  # the projector's embedding of the test codes
        assert (runs / kind / "logs" / "projector" / "projector_config.pbtxt").is_file()
        assert (runs / kind / "plots" / "samples.png").is_file()


def test_wae_evaluate_claims_no_likelihood(runs, capsys):
    assert main(["evaluate", str(runs / "wae"), "--iw-samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "reconstruction" in out and "elbo" not in out and "likelihood" not in out


def test_export_serves_the_signatures_that_apply(runs, tmp_path):
    for kind in ("wae", "infovae"):
        assert main(["export", str(runs / kind), "--saved-models", str(tmp_path / kind)]) == 0
        [version] = [p for p in (tmp_path / kind).rglob("saved_model.pb")]
        served = tf.saved_model.load(str(version.parent))
        assert {"serving_default", "reconstruct", "encode", "decode", "sample", "score"} <= set(served.signatures)
        images = served.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(1))["images"]
        assert images.shape == (3, 28, 28, 1)
        codes = served.signatures["encode"](images=tf.zeros((2, 28, 28, 1)))
        assert set(codes) == ({"z"} if kind == "wae" else {"z_mean", "z_log_var"})


def test_anomaly_scores_are_the_ones_each_model_has(runs, tmp_path, capsys):
    out = tmp_path / "wae.csv"
    assert main(["score", str(runs / "wae"), "--out", str(out)]) == 0  # every score it supports
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["index", "label", "reconstruction", "complexity"]
    assert main(["score", str(runs / "wae"), "--score", "iw_nll", "--out", str(tmp_path / "x.csv")]) == 2
    assert "this model supports ('reconstruction', 'complexity')" in capsys.readouterr().err
    assert main(["calibrate", str(runs / "wae")]) == 0
    assert json.loads((runs / "wae" / "anomaly.json").read_text())["score"] == "complexity"


def test_sample_quality_measures_the_wae_prior_samples(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(classifier_cache, "ClassifierSpec", lambda: TINY_SPEC)
    assert main(["sample-quality", str(runs / "wae"), "--samples", "40", "--classifier-cache", str(tmp_path)]) == 0
    result = json.loads((runs / "wae" / "sample_quality.json").read_text())["prior"]
    assert result["samples"] == 40 and result["frechet_distance"] > 0
