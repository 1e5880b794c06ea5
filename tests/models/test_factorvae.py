"""FactorVAE (Kim & Mnih 2018): the discriminator trained in the same step by its own
optimizer, nothing of it in the VAE's update when gamma is 0, its state in `.keras`
files, the compiled loop and MirroredStrategy."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.config import ConfigError, ModelConfig, RunConfig
from helpers import METRICS_RTOL, WEIGHTS_ATOL

SHAPE = (6,)
SMALL = dict(discriminator_layers=2, discriminator_units=16)


def data(n=96, seed=0):
    bits = np.random.default_rng(seed).random((n, SHAPE[0] // 2)) > 0.5
    return np.repeat(bits, 2, axis=1).astype("float32")


def factorvae(seed_weights=0, **options):
    keras.utils.set_random_seed(seed_weights)  # the initial weights
    return vae_tf.make_model("factorvae", "mlp", SHAPE, 2, hidden_units=(8,), seed=1, **{**SMALL, **options})


def vae(seed_weights=0):
    keras.utils.set_random_seed(seed_weights)
    return vae_tf.make_model("vae", "mlp", SHAPE, 2, hidden_units=(8,), seed=1)


def vae_part(model):
    return [np.asarray(w) for w in model.encoder.weights + model.decoder.weights]


def test_each_network_is_trained_by_its_own_optimizer_in_one_step():
    model = factorvae()
    discriminator_before = [np.asarray(w) for w in model.discriminator.weights]
    model.compile(optimizer=keras.optimizers.SGD(1e-2))
    history = model.fit(data(), epochs=2, batch_size=32, verbose=0).history
    assert set(history) == set(model.loss_terms)
    assert int(model.optimizer.iterations) == int(model.discriminator_optimizer.iterations) == 6
    for before, after in zip(discriminator_before, model.discriminator.weights):
        assert not np.array_equal(before, np.asarray(after))
    theirs = {id(v) for v in model.discriminator.weights}
    assert theirs.isdisjoint(id(v) for v in model.trainable_weights + model.trainable_variables)
    # The paper's discriminator optimizer: Adam(1e-4, beta_1 0.5, beta_2 0.9), its state
    # reported with the model's for checkpoints.
    adam = model.discriminator_optimizer
    assert (float(adam.learning_rate), adam.beta_1, adam.beta_2) == (pytest.approx(1e-4), 0.5, 0.9)
    assert len(model.optimizer_variables) == len(model.optimizer.variables) + len(adam.variables)
    assert 0.0 <= history["discriminator_accuracy"][-1] <= 1.0


def test_with_gamma_0_the_vae_trains_exactly_as_a_vae_and_gamma_changes_it():
    """The discriminator's loss reaches no encoder weight, and the TC term reaches them
    only through gamma."""
    x = data()
    results = {}
    for name, model in (("vae", vae()), ("gamma 0", factorvae(factor_tc_weight=0.0)),
                        ("gamma 10", factorvae(factor_tc_weight=10.0))):
        model.compile(optimizer=keras.optimizers.SGD(1e-2))
        model.fit(x, epochs=2, batch_size=32, shuffle=False, verbose=0)
        results[name] = vae_part(model)
    for a, b in zip(results["vae"], results["gamma 0"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(results["vae"], results["gamma 10"]))


def test_a_discriminator_at_one_half_adds_nothing_to_the_loss():
    model = factorvae(factor_tc_weight=50.0)
    logits = model.discriminator.get_layer("logits")
    logits.set_weights([np.zeros_like(w) for w in logits.get_weights()])  # logits 0: D = 1/2
    terms = {k: float(v) for k, v in model.compute_terms(data(16)).items()}
    assert terms["total_correlation"] == 0.0
    assert terms["loss"] == pytest.approx(terms["reconstruction"] + terms["kl"], rel=1e-6)
    assert terms["discriminator_loss"] == pytest.approx(math.log(2.0), abs=1e-6)


def test_a_keras_file_keeps_the_discriminator_and_its_optimizer(tmp_path):
    x = data()
    model = factorvae()
    model.compile(optimizer=vae_tf.FusedAdam(1e-3))
    model.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    model.save(tmp_path / "f.keras")
    restored = keras.saving.load_model(tmp_path / "f.keras", safe_mode=True)
    assert not any("discriminator" in v.path for v in model.optimizer.variables)  # no slots for its weights
    for mine, theirs in zip(model.optimizer_variables, restored.optimizer_variables, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs), err_msg=mine.path)
    # Both go on training alike: weights, noise streams and both optimizers were restored.
    for m in (model, restored):
        m.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_compiled_loop_trains_as_keras_loop_does():
    x = data(200)
    results = []
    for jit_compile in (True, False):
        model = factorvae()
        model.compile(optimizer=keras.optimizers.SGD(1e-2), steps_per_execution=4, jit_compile=jit_compile)
        assert model.compiles_training_loop == jit_compile
        history = model.fit(x, epochs=2, batch_size=32, shuffle=False, verbose=0).history
        results.append((history, model.get_weights()))
    (compiled, compiled_weights), (plain, plain_weights) = results
    for name in plain:
        np.testing.assert_allclose(compiled[name], plain[name], rtol=METRICS_RTOL, atol=1e-6, err_msg=name)
    for a, b in zip(compiled_weights, plain_weights, strict=True):
        # The discriminator's Adam moves a weight by ~lr whatever the gradient's rounding.
        np.testing.assert_allclose(a, b, rtol=METRICS_RTOL, atol=max(WEIGHTS_ATOL, 1e-4))


def test_steps_under_mirrored_equal_single_device_steps(mirrored_strategy):
    """Both losses are divided by the replicas (DESIGN.md pitfall 1). Each replica gets
    the single device's batch (the global batch is it twice), so it draws the same noise
    and permutation, and the replicas' summed gradients equal the single device's only
    with the division: SGD for the VAE would move twice as far without it."""
    batches = [data(32, seed) for seed in range(3)]

    def fitted(strategy, copies):
        with strategy.scope():
            model = factorvae()
            model.compile(optimizer=keras.optimizers.SGD(0.05))
        stacked = np.concatenate([np.concatenate([b] * copies) for b in batches])
        dataset = tf.data.Dataset.from_tensor_slices(stacked).batch(32 * copies)
        history = model.fit(dataset, epochs=1, verbose=0).history
        return model, history

    single, single_history = fitted(tf.distribute.get_strategy(), 1)
    mirrored, mirrored_history = fitted(mirrored_strategy, 2)
    for variable, b in zip(single.weights, mirrored.weights, strict=True):
        np.testing.assert_allclose(np.asarray(variable), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=variable.path)
    for mine, theirs in zip(single.discriminator_optimizer.variables, mirrored.discriminator_optimizer.variables):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-5, atol=1e-7, err_msg=mine.path)
    for name in single_history:
        np.testing.assert_allclose(mirrored_history[name], single_history[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for variable in mirrored.weights:  # every replica holds the same weights
        first, second = mirrored_strategy.experimental_local_results(variable.value)
        np.testing.assert_array_equal(first, second, err_msg=variable.path)


@pytest.mark.parametrize("option, value, message", [
    ("factor_tc_weight", -1.0, "--factor-tc-weight must be >= 0.0, got -1.0"),
    ("discriminator_lr", 0.0, "--discriminator-lr must be > 0, got 0.0"),
    ("discriminator_layers", 0, "--discriminator-layers must be >= 1, got 0"),
])
def test_a_bad_option_is_one_clear_error(option, value, message):
    with pytest.raises(ConfigError, match=message.replace("-", r"\-")):
        RunConfig(model=ModelConfig(kind="factorvae", **{option: value}))
    with pytest.raises(ConfigError, match="applies only to --model factorvae"):
        RunConfig(model=ModelConfig(kind="vae", **{option: 1.0 if option != "discriminator_layers" else 1}))
