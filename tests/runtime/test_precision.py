"""Mixed precision: policy choice, float32 where it matters, loss scaling, the CLI flag."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.runtime import precision
from vae_tf.cli import main
from vae_tf.serving.export import export_saved_model
from vae_tf.runtime.precision import cpu_has_bfloat16, dtype_policy, float32_copy, mixed_policy_name, policy_name
from vae_tf.runs.run import Run

SMALL = dict(hidden_units=(32,), filters=(4, 8), seed=0)


def test_bfloat16_support_is_read_from_the_cpu_flags(tmp_path):
    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu_has_bfloat16(with_bf16) is True
    assert cpu_has_bfloat16(without) is False
    assert cpu_has_bfloat16(tmp_path / "missing") is None


def test_policy_is_float16_on_gpus_bfloat16_on_capable_cpus_else_an_error(monkeypatch):
    assert mixed_policy_name(num_gpus=1, has_bfloat16=False) == "mixed_float16"
    assert mixed_policy_name(num_gpus=0, has_bfloat16=True) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="this CPU has none.*drop --mixed-precision"):
        mixed_policy_name(num_gpus=0, has_bfloat16=False)
    # CPU flags that cannot be read (not Linux): bfloat16 is tried rather than refused.
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: None)
    assert mixed_policy_name(num_gpus=0) == "mixed_bfloat16"


def test_the_default_policy_is_bfloat16_only_for_conv_networks_on_bfloat16_cpus(monkeypatch):
    # vae-tf train's default (--mixed-precision not given): where it was measured faster.
    assert policy_name(None, convolutional=True, num_gpus=0, has_bfloat16=True) == "mixed_bfloat16"
    assert policy_name(None, convolutional=False, num_gpus=0, has_bfloat16=True) == "float32"
    assert policy_name(None, convolutional=True, num_gpus=0, has_bfloat16=False) == "float32"
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: None)  # flags unreadable: not measured
    assert policy_name(None, convolutional=True, num_gpus=0) == "float32"
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    assert policy_name(None, convolutional=True, num_gpus=0) == "mixed_bfloat16"
    assert policy_name(None, convolutional=True, num_gpus=1, has_bfloat16=True) == "float32"
    # Asked for: on or off whatever the network.
    assert policy_name(False, convolutional=True, num_gpus=0, has_bfloat16=True) == "float32"
    assert policy_name(True, convolutional=False, num_gpus=0, has_bfloat16=True) == "mixed_bfloat16"
    assert policy_name(True, convolutional=False, num_gpus=1, has_bfloat16=False) == "mixed_float16"
    with pytest.raises(ValueError, match="this CPU has none"):
        policy_name(True, convolutional=True, num_gpus=0, has_bfloat16=False)


def test_dtype_policy_is_restored_after_the_block_even_on_error():
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with dtype_policy("mixed_bfloat16"):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_bfloat16_vae_keeps_code_kl_and_loss_float32_and_trains_like_float32(arch, real_batch):
    x = real_batch[0]
    losses = {}
    for policy in ("float32", "mixed_bfloat16"):
        with dtype_policy(policy):
            model = vae_tf.make_model("vae", arch, (28, 28, 1), 4, **SMALL)
        model.compile()
        keras.utils.set_random_seed(0)
        losses[policy] = model.fit(x, batch_size=64, epochs=6, shuffle=False, verbose=0).history["loss"]
    hidden = model.encoder.layers[2]
    assert hidden.compute_dtype == "bfloat16" and hidden.kernel.dtype == "float32"
    codes = model.encode(x[:8])
    z_mean, z_log_var = codes["z_mean"], codes["z_log_var"]
    assert z_mean.dtype == z_log_var.dtype == "float32"
    assert model.decode(z_mean).dtype == "float32"
    terms = model.compute_terms(tf.constant(x[:64]))
    assert all(value.dtype == "float32" for value in terms.values())
    assert losses["mixed_bfloat16"][-1] < losses["mixed_bfloat16"][0] - 10  # nats: it trained
    # bfloat16 keeps 8 bits of mantissa: the losses agree closely (0.1% seen), not exactly.
    np.testing.assert_allclose(losses["mixed_bfloat16"], losses["float32"], rtol=0.01)


def test_a_bfloat16_model_exports_in_float32_with_its_weights_and_a_tflite_decoder(tmp_path, real_batch):
    with dtype_policy("mixed_bfloat16"):
        model = vae_tf.make_model("vae", "conv", (28, 28, 1), 2, **SMALL)
    model.compile()
    model.fit(real_batch[0][:64], epochs=1, verbose=0)
    copy = float32_copy(model)
    assert copy.decoder.get_layer("deconv_0").compute_dtype == "float32"
    for ours, theirs in zip(copy.weights, model.weights, strict=True):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(ours, theirs)
    assert float32_copy(copy) is copy  # a float32 model is exported as it is
    z = tf.random.normal((4, 2), seed=0)
    # TFLite has no bfloat16 kernels: the float32 export is what makes --tflite work.
    path = export_saved_model(model, tmp_path, name="bf16", tflite=True)
    served = tf.saved_model.load(str(path)).signatures["decode"](z=z)["images"]
    np.testing.assert_allclose(served, copy.decode(z), atol=1e-5)
    np.testing.assert_allclose(served, model.decode(z), atol=0.02)  # bfloat16's rounding, no more
    decode = tf.lite.Interpreter(model_path=str(path / "decoder.tflite")).get_signature_runner("decode")
    np.testing.assert_allclose(decode(z=z.numpy())["images"], copy.decode(z), atol=1e-5)


def sgd_step(model, x):
    """The weight change of one SGD step on `x`."""
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    before = model.get_weights()
    model.fit(x, batch_size=len(x), epochs=1, verbose=0)
    return [after - start for after, start in zip(model.get_weights(), before)]


def test_float16_loss_scaling_gives_the_float32_step(real_batch, monkeypatch):
    # One SGD step: with the loss scaled (x32768 at first) but the gradients not
    # unscaled, or not scaled at all, the float16 step would be far off.
    monkeypatch.setattr(vae_tf.core.layers, "training_noise", lambda shape, seed_generator: tf.zeros(shape))
    x = real_batch[0][:128]
    float32_model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, **SMALL)
    with dtype_policy("mixed_float16"):
        float16_model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, **SMALL)
    float16_model.set_weights(float32_model.get_weights())

    float32_step, float16_step = sgd_step(float32_model, x), sgd_step(float16_model, x)
    assert isinstance(float16_model.optimizer, keras.optimizers.LossScaleOptimizer)
    largest = max(np.abs(s).max() for s in float32_step)
    assert largest > 1e-3
    for a, b in zip(float32_step, float16_step):
        np.testing.assert_allclose(b, a, atol=0.02 * largest)


@pytest.fixture
def mixed_precision_argv(tmp_path, tiny_data):
    return ["train", *tiny_data, "--arch", "conv",
            "--filters", "4", "8", "--latent-dim", "2", "--epochs", "1", "--iw-samples", "2",
            "--batch-size", "256", "--mixed-precision", "--out", str(tmp_path / "runs"),
            "--name", "bf16", "--saved-models", str(tmp_path / "sm")]


def test_mixed_precision_on_a_cpu_without_bfloat16_is_refused_before_writing(
        tmp_path, monkeypatch, capsys, mixed_precision_argv):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    assert main(mixed_precision_argv) == 2
    assert "mixed precision needs a GPU or a CPU with bfloat16" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_train_mixed_precision_from_the_command_line(tmp_path, monkeypatch, mixed_precision_argv):
    # bfloat16 runs (emulated if need be) on any CPU; the policy check is tested above.
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    assert main(mixed_precision_argv) == 0
    run = tmp_path / "runs" / "bf16"
    assert json.loads((run / "config.json").read_text())["runtime"]["mixed_precision"] is True
    assert np.isfinite(json.loads((run / "metrics.json").read_text())["neg_elbo"])
    model = keras.saving.load_model(run / "model.keras")
    assert model.decoder.get_layer("deconv_0").compute_dtype == "bfloat16"  # as trained
    # After training, in float32: metrics, scores, calibration and export agree.
    assert Run(run).model.decoder.get_layer("deconv_0").compute_dtype == "float32"
    served = tf.saved_model.load(str(tmp_path / "sm" / "bf16" / "1"))
    decoded = served.signatures["decode"](z=tf.zeros((2, 2)))
    assert all(value.dtype == tf.float32 for value in decoded.values())
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize("flag, stored, compute_dtype", [
    (None, None, "bfloat16"),  # the default for conv networks on a CPU with bfloat16
    ("--no-mixed-precision", False, "float32"),
])
def test_conv_runs_default_to_bfloat16_on_bfloat16_cpus_unless_switched_off(
        tmp_path, monkeypatch, flag, stored, compute_dtype, mixed_precision_argv):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    argv = [a for a in mixed_precision_argv if a != "--mixed-precision"]
    assert main(argv + ([flag] if flag else []) + ["--no-export"]) == 0
    run = tmp_path / "runs" / "bf16"
    assert json.loads((run / "config.json").read_text())["runtime"]["mixed_precision"] is stored
    model = keras.saving.load_model(run / "model.keras")
    assert model.decoder.get_layer("deconv_0").compute_dtype == compute_dtype
