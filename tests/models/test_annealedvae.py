"""AnnealedVAE (Burgess et al. 2018, eq. 8): reconstruction + gamma * |KL - C|, with C
read from the optimizer's step count."""

import keras
import numpy as np
import pytest

import vae_tf
from vae_tf.config import ConfigError, ModelConfig, RunConfig
from vae_tf.models.annealedvae import capacity_at

SHAPE = (6,)


def tiny(kind="annealedvae", **options):
    return vae_tf.make_model(kind, "mlp", SHAPE, 2, hidden_units=(16,), seed=1, **options)


def binary_data(n=256, seed=0):
    """3 random bits, each repeated twice: 3 bits of information in 6 pixels."""
    bits = np.random.default_rng(seed).random((n, SHAPE[0] // 2)) > 0.5
    return np.repeat(bits, 2, axis=1).astype("float32")


def expected_capacity(step, capacity_max, capacity_steps):
    return min(capacity_max, capacity_max * step / capacity_steps)


def test_capacity_rises_linearly_to_c_max_and_stays():
    for step in (0, 1, 50, 99, 100, 101, 10_000):
        assert float(capacity_at(step, 25.0, 100)) == pytest.approx(expected_capacity(step, 25.0, 100))


def test_with_c_at_the_kl_the_penalty_vanishes():
    """C = KL: the loss is the reconstruction alone (eq. 8's penalty is |KL - C|)."""
    x = binary_data(8)
    first = tiny(capacity_steps=1)
    kl = float(first.compute_terms(x)["kl"])  # analytic, from z_mean and z_log_var
    model = tiny(capacity_max=kl, capacity_steps=1)
    model.set_weights(first.get_weights())
    model.compile()
    model.optimizer.iterations.assign(1)  # C has reached C_max = KL
    terms = model.compute_terms(x)
    assert float(terms["capacity"]) == pytest.approx(kl)
    assert float(terms["loss"]) == pytest.approx(float(terms["reconstruction"]), abs=1e-3)  # 1000 * |float32 error|


def test_with_c_at_zero_it_is_the_beta_vae_with_beta_gamma():
    """C = 0 (before the first step, or C_max = 0): |KL - 0| = KL, so the loss is the
    beta-VAE's with beta = gamma, for the same weights and the same draw of z."""
    x = binary_data(32)
    annealed = tiny(capacity_weight=4.0)
    vae = tiny("vae")
    vae.set_weights(annealed.get_weights())
    vae.beta.assign(4.0)  # after set_weights, which copies the KL weight variable too
    for _ in range(3):  # the same noise stream, step after step
        ours, theirs = annealed.compute_terms(x, training=True), vae.compute_terms(x, training=True)
        assert float(ours["capacity"]) == 0.0
        np.testing.assert_allclose(float(ours["loss"]), float(theirs["loss"]), rtol=1e-6)


def test_c_comes_from_the_optimizer_step_inside_the_compiled_step():
    """Each epoch's `capacity` is the mean of C over its steps: C is read from the
    optimizer's iteration count in every step, not frozen when the step is traced."""
    x = binary_data(64)
    model = tiny(capacity_max=3.0, capacity_steps=10)
    model.compile(steps_per_execution=3)
    history = model.fit(x, batch_size=16, epochs=4, verbose=0).history  # 4 steps an epoch
    expected = [np.mean([expected_capacity(t, 3.0, 10) for t in range(4 * e, 4 * e + 4)]) for e in range(4)]
    np.testing.assert_allclose(history["capacity"], expected, rtol=1e-6)
    assert float(model.capacity()) == 3.0 and int(model.optimizer.iterations) == 16


def test_a_reloaded_model_continues_the_schedule(tmp_path):
    """Saved and reloaded mid-schedule, training continues with the same C, step for step,
    as without the interruption."""
    x = binary_data(64)
    straight = tiny(capacity_max=3.0, capacity_steps=20)
    first = tiny(capacity_max=3.0, capacity_steps=20)
    first.set_weights(straight.get_weights())
    straight.compile()
    whole = straight.fit(x, batch_size=16, epochs=4, shuffle=False, verbose=0).history

    first.compile()
    first.fit(x, batch_size=16, epochs=2, shuffle=False, verbose=0)
    first.save(tmp_path / "half.keras")
    resumed = keras.saving.load_model(tmp_path / "half.keras", safe_mode=True)
    assert (resumed.capacity_max, resumed.capacity_steps, resumed.capacity_weight) == (3.0, 20, 1000.0)
    rest = resumed.fit(x, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(rest["capacity"], whole["capacity"][2:], rtol=1e-6)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_kl_tracks_c_while_it_rises_and_holds_at_c_max():
    x = binary_data()
    model = tiny(capacity_max=1.5, capacity_steps=64)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=32, epochs=16, verbose=0).history  # C_max reached in epoch 8
    capacity, kl = np.array(history["capacity"]), np.array(history["kl"])
    assert capacity[0] < 0.1 and capacity[-1] == 1.5
    assert np.all(np.abs(kl - capacity) < 0.3), (kl, capacity)
    assert abs(kl[8:].mean() - 1.5) < 0.1
    assert kl[-1] > 10 * kl[0]


@pytest.mark.parametrize("options, message", [
    ({"capacity_steps": 0}, "capacity_steps must be >= 1"),
    ({"capacity_max": -1.0}, "capacity_max must be >= 0"),
    ({"capacity_weight": -1.0}, "capacity_weight must be >= 0"),
    ({"capacity_steps": 2.5}, "capacity_steps must be a int"),
])
def test_bad_options_are_one_clear_error(options, message):
    with pytest.raises(ValueError, match=message):
        tiny(**options)


def test_free_bits_and_a_bad_config_are_refused():
    with pytest.raises(ValueError, match="free_bits does not apply to AnnealedVAE"):
        tiny(free_bits=0.5)
    with pytest.raises(ConfigError, match=r"\-\-capacity\-max applies only to \-\-model annealedvae"):
        RunConfig(model=ModelConfig(kind="vae", capacity_max=5.0))
    with pytest.raises(ConfigError, match=r"\-\-capacity\-steps must be >= 1"):
        RunConfig(model=ModelConfig(kind="annealedvae", capacity_steps=0))
