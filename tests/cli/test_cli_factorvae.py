"""`vae-tf train --model factorvae` on dSprites and on Fashion-MNIST, its logged
discriminator metrics, its SavedModel, and `vae-tf disentanglement` of the run; tiny."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from vae_tf.cli import main

FACTORVAE = ["--model", "factorvae", "--factor-tc-weight", "10", "--discriminator-layers", "2",
             "--discriminator-units", "32"]


@pytest.fixture(scope="module")
def tiny(tiny_settings):
    return [*tiny_settings, "--hidden-units", "16", "--latent-dim", "3", "--iw-samples", "1", "--batch-size", "64"]


def history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # about 50 s each on a loaded 2-core machine
@pytest.mark.parametrize("dataset", ["dsprites", "fashion_mnist"])
def test_train_logs_the_discriminator_and_exports(dataset, tiny, tmp_path):
    assert main(["train", "--dataset", dataset, "--limit", "256", "--validation-fraction", "0", *tiny, *FACTORVAE,
                 "--projector-examples", "0", "--export", "--saved-models", str(tmp_path / "sm"),
                 "--out", str(tmp_path), "--name", "f"]) == 0
    run = tmp_path / "f"
    row = history(run)[0]
    assert {"total_correlation", "discriminator_loss", "discriminator_accuracy", "kl"} <= set(row)
    assert 0.0 <= float(row["discriminator_accuracy"]) <= 1.0
    assert json.loads((run / "config.json").read_text())["model"]["factor_tc_weight"] == 10.0
    served = tf.saved_model.load(str(tmp_path / "sm" / "f" / "1"))
    assert {"encode", "decode", "sample"} <= set(served.signatures)
    images = served.signatures["sample"](num_samples=tf.constant(2), seed=tf.constant(1))["images"]
    assert images.shape[0] == 2 and np.all(np.isfinite(images.numpy()))
    if dataset == "dsprites":
        out = tmp_path / "scores.json"
        assert main(["disentanglement", str(run), "--quick", "--seed", "1", "--out", str(out)]) == 0
        scores = json.loads(out.read_text())
        assert 0.0 <= scores["mig"] <= 1.0 and 0.0 <= scores["factor_vae"]["eval_accuracy"] <= 1.0
