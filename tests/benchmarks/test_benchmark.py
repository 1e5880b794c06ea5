"""The benchmark's arithmetic, its command, and that the tuned defaults change no numbers."""

import json

import keras
import numpy as np
import pytest

from vae_tf.benchmarks import throughput as benchmark
from vae_tf.cli import main
from vae_tf.models.factory import make_model
from vae_tf.runtime.precision import policy_name

from helpers import METRICS_RTOL, WEIGHTS_ATOL


def test_analytic_training_flops_by_hand():
    mlp = make_model(input_shape=(28, 28, 1), **benchmark.CONFIGS["mlp"])
    # 784-400-(20 mean, 20 log-var) encoder, 20-400-784 decoder, 2 FLOPs per multiply-add.
    assert benchmark.training_flops_per_image(mlp) == 3 * 2 * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784)
    conv = make_model(input_shape=(28, 28, 1), **benchmark.CONFIGS["conv"])
    encoder = 14 * 14 * 9 * 32 + 7 * 7 * 9 * 32 * 64 + 3136 * 16 + 16 * 4
    decoder = 2 * 3136 + 7 * 7 * 9 * 64 * 64 + 14 * 14 * 9 * 64 * 32 + 28 * 28 * 9 * 32
    assert benchmark.training_flops_per_image(conv) == 3 * 2 * (encoder + decoder)


def test_tuned_and_plain_compile_reach_the_same_loss(real_batch):
    images, _ = real_batch
    results = []
    for options in ({}, benchmark.PLAIN_COMPILE):
        keras.utils.set_random_seed(0)  # the initial weights
        model = make_model("vae", "mlp", (28, 28, 1), 8, hidden_units=(64,), seed=0)
        model.compile(**options)
        history = model.fit(images, epochs=3, batch_size=32, shuffle=False, verbose=0).history
        results.append((history["loss"], model.get_weights(), model.compiles_training_loop))
    (tuned_loss, tuned_weights, compiled), (plain_loss, plain_weights, _) = results
    assert tuned_loss[-1] < 0.9 * tuned_loss[0]  # it trained
    # XLA's rounding where the defaults compile the loop; else the same kernels as plain.
    rtol, atol = (METRICS_RTOL, WEIGHTS_ATOL) if compiled else (1e-5, 1e-5)
    np.testing.assert_allclose(tuned_loss, plain_loss, rtol=rtol)
    for tuned, plain in zip(tuned_weights, plain_weights, strict=True):
        np.testing.assert_allclose(tuned, plain, atol=atol)


@pytest.mark.slow  # twelve fresh processes
def test_benchmark_command_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["benchmark", "--epochs", "1", "--examples", "512", "--serving-calls", "20",
                 "--repeats", "2", "--config", "mlp", "conv", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    for name in ("mlp", "conv"):
        r = results[name]
        assert r["images_per_s"] > 0 and r["plain_images_per_s"] > 0 and r["matmul_gflops"] > 0
        assert r["gflops"] == np.float64(r["images_per_s"] * r["flops_per_image"] / 1e9)
        assert r["speedup_over_plain"] == r["images_per_s"] / r["plain_images_per_s"]
        assert len(r["rounds"]) == 2  # the medians of two rounds, each variant in its own process
        assert r["images_per_s"] == np.median([one["defaults"] for one in r["rounds"]])
        assert r["plain_images_per_s"] == np.median([one["plain"] for one in r["rounds"]])
        # The defaults are timed in vae-tf train's precision; "other" in the other one.
        assert r["policy"] == policy_name(None, convolutional=name == "conv")
        assert r["other_policy"] in {"float32", "mixed_bfloat16", "mixed_float16", None} - {r["policy"]}
        assert (r["other_images_per_s"] is None) == (r["other_policy"] is None)
    assert not results["conv"]["compiled_loop"]  # convolutions keep Keras's loop
    for signature in ("decode", "encode"):
        latency = results["serving"][signature]
        assert 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert results["machine"]["examples"] == 512
    table = capsys.readouterr().out
    assert "images/s" in table and "decode  batch 1: p50" in table and "conv Keras" in table
