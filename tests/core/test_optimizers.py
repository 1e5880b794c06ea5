"""FusedAdam takes the same steps as keras.optimizers.Adam, on one device and mirrored."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf import FusedAdam


def build(strategy=None, **kwargs):
    with (strategy or tf.distribute.get_strategy()).scope():
        return vae_tf.make_model("vae", "mlp", (28, 28, 1), 3, hidden_units=(32,), seed=0, **kwargs)


def train(model, optimizer, x, steps_per_execution=1, epochs=2):
    model.compile(optimizer=optimizer, steps_per_execution=steps_per_execution)
    model.fit(x, batch_size=64, epochs=epochs, shuffle=False, verbose=0)
    return [np.asarray(w) for w in model.weights]


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_follows_keras_adam(real_batch, amsgrad, monkeypatch):
    # The optimizers' arithmetic alone: no sampling noise, whose draws steer which
    # weights end up with v near 0, where Adam magnifies rounding.
    monkeypatch.setattr(vae_tf.core.layers, "training_noise", lambda shape, seed_generator: tf.zeros(shape))
    # A learned Gaussian sigma adds a scalar weight to the dense kernels and biases.
    kwargs = dict(likelihood="gaussian", sigma=0.5, learn_sigma=True)
    keras_model, fused_model = build(**kwargs), build(**kwargs)
    fused_model.set_weights(keras_model.get_weights())
    initial = [np.asarray(w) for w in keras_model.weights]
    x = real_batch[0]

    keras.utils.set_random_seed(1)
    expected = train(keras_model, keras.optimizers.Adam(1e-3, amsgrad=amsgrad), x)
    keras.utils.set_random_seed(1)
    got = train(fused_model, FusedAdam(1e-3, amsgrad=amsgrad), x)

    assert max(np.abs(a - b).max() for a, b in zip(expected, initial)) > 1e-3
    # Rounding differs (one kernel vs separate ops); where v is near 0 Adam magnifies
    # it, but any difference in the formula would be of the order of one step, 1e-3.
    for a, b in zip(expected, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    assert int(fused_model.optimizer.iterations) == 16


def test_fused_adam_under_mirrored_matches_one_device(real_batch, monkeypatch, mirrored_strategy):
    # Zero sampling noise: each replica would otherwise draw its own.
    monkeypatch.setattr(vae_tf.core.layers, "training_noise", lambda shape, seed_generator: tf.zeros(shape))
    single, mirrored = build(), build(mirrored_strategy)
    mirrored.set_weights(single.get_weights())
    x = real_batch[0]

    expected = train(single, FusedAdam(1e-3), x)
    with mirrored_strategy.scope():
        got = train(mirrored, FusedAdam(1e-3), x)

    for a, b in zip(expected, got):
        np.testing.assert_allclose(b, a, atol=1e-5)
    for weight in mirrored.trainable_weights:  # every replica holds the same copy
        first, second = (np.asarray(v) for v in weight.value.values)
        np.testing.assert_array_equal(first, second)


def test_models_default_to_fused_adam_and_reload_it(tmp_path, real_batch):
    model = build()
    model.compile()
    assert isinstance(model.optimizer, FusedAdam)
    model.fit(real_batch[0], batch_size=128, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded.optimizer, FusedAdam)
    assert int(reloaded.optimizer.iterations) == 4
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_staged_decay_is_the_iwae_papers_schedule():
    """Burda et al. (2016), section 5: 3^i passes at 1e-3 * 10^(-i/7), i = 0..7: 3,280 passes."""
    from vae_tf.core.optimizers import StagedDecay

    assert StagedDecay.stage_ends() == (1, 4, 13, 40, 121, 364, 1093, 3280)
    schedule = StagedDecay(1e-3, steps_per_pass=10)
    for stage, end in enumerate(StagedDecay.stage_ends()):
        first = (end - 3 ** stage) * 10  # the stage's first step
        for step in (first, end * 10 - 1):
            np.testing.assert_allclose(float(schedule(step)), 1e-3 * 10 ** (-stage / 7), rtol=1e-6)
    np.testing.assert_allclose(float(schedule(10 ** 7)), 1e-4, rtol=1e-6)  # stays at the last stage's
    again = StagedDecay.from_config(schedule.get_config())
    assert float(again(400)) == float(schedule(400))
    with pytest.raises(ValueError, match="steps_per_pass must be an integer >= 1, got 0"):
        StagedDecay(1e-3, steps_per_pass=0)
