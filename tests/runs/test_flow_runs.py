"""The flow-posterior VAE as a run: `vae-tf train --model flowvae`, its likelihood figures,
export, anomaly scores, the projector, and an exact resume after an interruption."""

import json

import pytest
import tensorflow as tf

from vae_tf.cli import main


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("flow_runs")
    for flow in ("iaf", "planar"):
        assert main(["train", *tiny_run, "--model", "flowvae", "--flow", flow, "--flow-steps", "2",
                     "--out", str(root), "--name", flow, "--projector-examples", "50"]) == 0
    return root


def test_a_flow_run_reports_its_likelihood_bounds_and_the_projector(runs):
    for flow in ("iaf", "planar"):
        metrics = json.loads((runs / flow / "metrics.json").read_text())
        assert {"neg_elbo", "iw_log_likelihood", "kl"} <= set(metrics)
        assert -metrics["iw_log_likelihood"] <= metrics["neg_elbo"] + 0.5
        assert json.loads((runs / flow / "config.json").read_text())["model"]["flow"] == flow
        assert (runs / flow / "logs" / "projector" / "projector_config.pbtxt").is_file()
        assert (runs / flow / "plots" / "samples.png").is_file()


def test_export_serves_encode_decode_and_prior_samples(runs, tmp_path):
    assert main(["export", str(runs / "iaf"), "--saved-models", str(tmp_path)]) == 0
    [version] = [p for p in tmp_path.rglob("saved_model.pb")]
    served = tf.saved_model.load(str(version.parent))
    assert {"serving_default", "reconstruct", "encode", "decode", "sample", "score"} <= set(served.signatures)
    codes = served.signatures["encode"](images=tf.zeros((2, 28, 28, 1)))
    assert set(codes) == {"z_mean", "z_log_var", "context", "z_flow"}
    images = served.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(1))["images"]
    assert images.shape == (3, 28, 28, 1)


def test_anomaly_scores_are_the_ones_a_flow_posterior_has(runs, tmp_path, capsys):
    out = tmp_path / "iaf.csv"
    assert main(["score", str(runs / "iaf"), "--iw-samples", "2", "--out", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["index", "label", "neg_elbo", "iw_nll", "reconstruction", "complexity"]
    assert main(["score", str(runs / "iaf"), "--score", "regret", "--out", str(tmp_path / "x.csv")]) == 2
    assert "this model supports" in capsys.readouterr().err
    assert main(["calibrate", str(runs / "iaf")]) == 0
    assert json.loads((runs / "iaf" / "anomaly.json").read_text())["score"] == "reconstruction"

