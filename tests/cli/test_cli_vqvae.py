"""`vae-tf` with --model vqvae end to end on real Fashion-MNIST images (the small_dir fixture), tiny."""

import json

import numpy as np
import pytest
import tensorflow as tf

from vae_tf.cli import main
from vae_tf.runtime.precision import float32_copy
from vae_tf.runs.run import Run

TINY_VQ = ["--model", "vqvae", "--arch", "conv", "--num-embeddings", "16", "--embedding-dim", "4",
           "--filters", "8", "16", "--epochs", "1", "--batch-size", "256"]
TINY_PRIOR = ["--epochs", "1", "--filters", "8", "--layers", "1", "--conditional"]


@pytest.fixture(scope="module")
def vq_run(tiny_data, tmp_path_factory):
    """A trained VQ-VAE run with a conditional prior, and its first SavedModel (no prior)."""
    root = tmp_path_factory.mktemp("vq")
    argv = ["train", *tiny_data, *TINY_VQ, "--codebook-ema", "--name", "vq",
            "--out", str(root / "runs"), "--saved-models", str(root / "sm")]
    assert main(argv) == 0
    run = root / "runs" / "vq"
    assert main(["train-prior", str(run), *TINY_PRIOR]) == 0
    return run


def test_train_writes_a_vqvae_run_with_reconstruction_nll(vq_run):
    config = json.loads((vq_run / "config.json").read_text())["model"]
    assert (config["kind"], config["num_embeddings"], config["embedding_dim"]) == ("vqvae", 16, 4)
    assert config["codebook_ema"] is True
    model = Run(vq_run).model
    assert model.quantizer.ema and model.num_embeddings == 16 and model.grid_shape == (7, 7)
    # reconstructions and curves; no interpolation or latent scatter for a grid of codes
    assert sorted(p.name for p in (vq_run / "plots").iterdir()) == [
        "reconstructions.png", "training_curves.png"
    ]


def test_train_prior_saves_the_prior_and_reports_its_test_nll(vq_run, capsys):
    metrics = json.loads((vq_run / "metrics.json").read_text())
    assert metrics["reconstruction"] > 0 and metrics["examples"] == 2000
    # bits per dim is the NLL over the 7 x 7 grid in base 2
    assert metrics["prior_bits_per_dim"] == pytest.approx(metrics["prior_nll"] / (49 * np.log(2)))
    assert 0 < metrics["prior_nll"] < 49 * np.log(16) * 1.5
    model = Run(vq_run).model
    assert model.can_sample and model.sample_classes == 10
    assert main(["evaluate", str(vq_run)]) == 0  # keeps the prior's metrics, recomputed
    again = json.loads((vq_run / "metrics.json").read_text())
    assert again["prior_nll"] == pytest.approx(metrics["prior_nll"], rel=1e-5)
    assert again["reconstruction"] == pytest.approx(metrics["reconstruction"], rel=1e-5)


def test_sample_is_reproducible_for_a_seed(vq_run, tmp_path, capsys):
    model = Run(vq_run).model
    np.testing.assert_array_equal(model.sample(4, labels=3, seed=7, temperature=0.8),
                                  model.sample(4, labels=3, seed=7, temperature=0.8))
    for out in ("a.png", "b.png"):
        argv = ["sample", str(vq_run), "-n", "4", "--label", "3", "--temperature", "0.8",
                "--seed", "7", "--out", str(tmp_path / out)]
        assert main(argv) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert "49/49" in capsys.readouterr().out  # the progress bar reached the last position


def test_export_serves_integer_codes_and_sampling(vq_run, tmp_path):
    assert main(["export", str(vq_run), "--saved-models", str(tmp_path), "--tflite"]) == 0
    path = tmp_path / "vq" / "1"
    served = tf.saved_model.load(str(path))
    assert set(served.signatures) == {
        "serving_default", "encode", "decode", "reconstruct", "score", "sample"
    }
    model = float32_copy(Run(vq_run).model)  # what is exported (conv runs may train in bfloat16)
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype="float32")
    codes = served.encode(tf.constant(x))["codes"]
    assert codes.dtype == tf.int32
    np.testing.assert_array_equal(codes, model.encode(x)["codes"])
    labels = tf.fill([2], 5)
    first = served.sample(num_samples=tf.constant(2), seed=tf.constant(1), labels=labels)["images"]
    again = served.sample(num_samples=tf.constant(2), seed=tf.constant(1), labels=labels)["images"]
    np.testing.assert_array_equal(first, again)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must lie in \[0, 16\)"):
        served.decode(tf.fill([1, 7, 7], 16))
    interpreter = tf.lite.Interpreter(model_path=str(path / "decoder.tflite"))
    decode = interpreter.get_signature_runner("decode")
    images = decode(codes=np.asarray(codes))["images"]
    np.testing.assert_allclose(images, model.decode(codes), atol=1e-5)


def test_bad_codes_and_labels_get_clear_errors(vq_run, tmp_path, capsys):
    model = Run(vq_run).model
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\), got values from 16 to 16"):
        model.decode(np.full((1, 7, 7), 16))
    with pytest.raises(ValueError, match=r"codes have shape \(1, 6, 7\)"):
        model.decode(np.zeros((1, 6, 7), "int32"))
    assert main(["sample", str(vq_run), "--label", "10", "--out", str(tmp_path / "s.png")]) == 2
    assert "--label must be in [0, 10), got 10" in capsys.readouterr().err
    assert main(["sample", str(vq_run), "--temperature", "0", "--out", str(tmp_path / "s.png")]) == 2
    assert "--temperature must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "vae", "--num-embeddings", "8"],
         "--num-embeddings applies only to --model vqvae, not --model vae"),
        (["--model", "ae", "--codebook-ema"], "--codebook-ema applies only to --model vqvae"),
        (["--model", "vqvae", "--arch", "mlp"], "--model vqvae needs --arch conv"),
        (["--model", "vqvae", "--arch", "conv", "--num-embeddings", "1"],
         "--num-embeddings must be >= 2, got 1"),
        (["--model", "vqvae", "--arch", "conv", "--commitment", "-1"],
         "--commitment must be >= 0.0, got -1.0"),
    ],
)
def test_bad_vqvae_settings_fail_with_one_line_and_leave_nothing(tiny_data, argv, message, tmp_path, capsys):
    assert main(["train", *tiny_data, "--out", str(tmp_path / "runs"), "--no-export", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not any(tmp_path.iterdir())


def test_train_prior_and_temperature_refuse_other_models(tiny_data, tmp_path, capsys):
    argv = ["train", *tiny_data, "--model", "ae", "--hidden-units", "16", "--latent-dim", "2",
            "--epochs", "1", "--name", "a", "--out", str(tmp_path / "runs"), "--no-export"]
    assert main(argv) == 0
    run = str(tmp_path / "runs" / "a")
    capsys.readouterr()
    assert main(["train-prior", run, "--epochs", "1"]) == 2
    assert "train-prior needs a --model vqvae run" in capsys.readouterr().err


def test_train_prior_checks_the_runs_metrics_before_it_trains(vq_run, capsys):
    """metrics.json is read (and checked) before the prior trains, not after."""
    metrics, model = vq_run / "metrics.json", (vq_run / "model.keras").read_bytes()
    saved = metrics.read_text()
    try:
        metrics.write_text("{\"reconstruction\": [1]}")
        assert main(["train-prior", str(vq_run), *TINY_PRIOR]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"vae-tf: error: {metrics}: metric 'reconstruction' must be a finite number, got [1]; "
                       "rerun vae-tf evaluate on the run to rewrite it"]
        assert (vq_run / "model.keras").read_bytes() == model
    finally:
        metrics.write_text(saved)


def test_sample_quality_draws_from_the_pixelcnn_prior(vq_run, tmp_path, capsys, monkeypatch):
    from vae_tf.analysis.feature_classifier import ClassifierSpec
    from vae_tf.runs import classifier_cache

    monkeypatch.setattr(classifier_cache, "ClassifierSpec",
                        lambda: ClassifierSpec(filters=(4,), feature_units=8, epochs=1, batch_size=256))
    assert main(["sample-quality", str(vq_run), "--samples", "20", "--classifier-cache", str(tmp_path)]) == 0
    assert "20 samples from the prior" in capsys.readouterr().out
    result = json.loads((vq_run / "sample_quality.json").read_text())["prior"]
    assert result["frechet_distance"] > 0 and 0 <= result["recall"] <= 1
