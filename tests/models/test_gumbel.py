"""The Gumbel-softmax VAE: its likelihood against the closed form of one categorical
variable, its terms, the annealed temperature in training, and its options."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from helpers import METRICS_RTOL, WEIGHTS_ATOL
from vae_tf.analysis import evaluation
from vae_tf.core.categorical import uniform_kl

SHAPE = (6,)


def tiny(latent_dim=1, **options):
    return vae_tf.make_model("gumbel", "mlp", SHAPE, latent_dim, hidden_units=(8,), seed=1, **options)


def bits(n=8, seed=0):
    return (np.random.default_rng(seed).random((n, *SHAPE)) > 0.5).astype("float32")


def exact_log_likelihood(model, x):
    """log p(x) = logsumexp_k log p(x|e_k) - log K for one variable of K categories."""
    k = model.categories
    log_px = np.stack([-np.asarray(model._decoder_nll(x, np.tile(np.eye(k, dtype="float32")[i], (len(x), 1)), None))
                       for i in range(k)], axis=1)
    return np.logaddexp.reduce(log_px.astype("float64"), axis=1) - math.log(k), log_px


def patterns(n=64, seed=0):
    """Four patterns of 6 pixels: what one variable of 4 categories can encode."""
    prototypes = np.array([[0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]])
    return prototypes[np.random.default_rng(seed).integers(4, size=n)].astype("float32")


def trained():
    model = tiny(gumbel_categories=4)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(patterns(), epochs=20, batch_size=16, verbose=0)  # a posterior far from uniform
    return model


def test_each_importance_weight_is_the_joint_over_the_posterior_of_its_one_hot_draw():
    model = trained()
    x = np.concatenate([patterns(6, seed=1), bits(2, seed=1)])
    codes = model.encode(x)
    log_w = np.asarray(model.log_importance_weights(x, codes, num_samples=5, seed=2))
    _, log_px = exact_log_likelihood(model, x)
    log_q = np.asarray(codes["log_probabilities"])
    # The same draws as `log_importance_weights` makes: its seed, its shapes.
    draws = np.asarray(vae_tf.models.gumbel.one_hot_draws(log_q.reshape(-1, 1, 4), 2, 5)).argmax(axis=-1)[..., 0]
    rows = np.arange(8)
    expected = log_px[rows, draws] - math.log(4) - log_q[rows, draws]
    np.testing.assert_allclose(log_w, expected, rtol=1e-5, atol=1e-4)


def test_the_importance_weighted_likelihood_approaches_the_closed_form():
    model = trained()
    x = np.concatenate([patterns(6, seed=1), bits(2, seed=1)])
    exact, _ = exact_log_likelihood(model, x)
    assert np.asarray(model.encode(x)["probabilities"]).max() > 0.6  # q is not the prior
    few = evaluation.log_likelihoods(model, x, num_samples=10, seed=0)
    estimate = evaluation.log_likelihoods(model, x, num_samples=4000, seed=0)
    # Measured: within 0.011 of the closed form for the patterns, 0.03 for the random bits.
    np.testing.assert_allclose(estimate, exact, atol=0.05)
    assert np.abs(estimate - exact).mean() < np.abs(few - exact).mean()
    one_draw = evaluation.log_likelihoods(model, x, num_samples=1, seed=0)  # the ELBO: a lower bound
    assert np.mean(one_draw) < np.mean(exact)


def test_the_elbo_terms_are_the_exact_kl_and_a_one_hot_reconstruction():
    model = tiny(latent_dim=2, gumbel_categories=3)
    x = bits(5)
    terms = model.per_example_terms(x, seed=3)
    log_q = np.asarray(model.encode(x)["log_probabilities"]).reshape(5, 2, 3)
    np.testing.assert_allclose(terms["kl"], np.asarray(uniform_kl(log_q)).sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(terms["neg_elbo"], terms["reconstruction"] + terms["kl"], rtol=1e-6)
    codes = model.encode(x)
    assert set(codes) == {"probabilities", "one_hot", "log_probabilities"}
    np.testing.assert_allclose(np.asarray(codes["probabilities"]).reshape(5, 2, 3).sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(codes["one_hot"]).reshape(5, 2, 3).argmax(-1), log_q.argmax(-1))
    samples = np.asarray(model.prior.sample(4, seed=0)).reshape(4, 2, 3)
    assert np.all(samples.sum(axis=-1) == 1) and model.sample(4).shape == (4, *SHAPE)


def test_training_anneals_the_temperature_from_the_step_count():
    model = tiny(gumbel_temperature=2.0, gumbel_temperature_min=0.5, gumbel_anneal_rate=0.1, gumbel_anneal_every=2)
    model.compile()
    history = model.fit(bits(48), epochs=2, batch_size=8, verbose=0, callbacks=model.training_callbacks(1.0, 0))
    last_step = 2 * 6 - 1  # the temperature of the last step: t = 11, rounded down to 10
    assert float(model.temperature) == pytest.approx(2.0 * math.exp(-0.1 * 10))
    assert history.history["temperature"][-1] == pytest.approx(float(model.temperature))
    assert int(model.optimizer.iterations) == last_step + 1


def test_a_resumed_fit_anneals_and_trains_exactly_as_an_uninterrupted_one(tmp_path):
    options = dict(gumbel_anneal_rate=0.05, gumbel_anneal_every=1)
    x = bits(32)
    keras.utils.set_random_seed(0)
    whole = tiny(**options)
    whole.compile()
    whole.fit(x, epochs=2, batch_size=8, shuffle=False, verbose=0)
    keras.utils.set_random_seed(0)
    half = tiny(**options)
    half.compile()
    half.fit(x, epochs=1, batch_size=8, shuffle=False, verbose=0)
    half.save(tmp_path / "half.keras")
    resumed = keras.saving.load_model(tmp_path / "half.keras", safe_mode=True)
    assert float(resumed.temperature) == pytest.approx(float(half.temperature))
    resumed.fit(x, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(whole.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7, err_msg=a.path)
    assert float(resumed.temperature) < 1.0


def test_the_compiled_loop_anneals_and_trains_as_keras_loop_does():
    """The noise is drawn by XLA's Philox in both loops, and the temperature read from the
    step count inside each step; 100 examples in batches of 8, 4 steps per execution."""
    results = []
    for jit_compile in (True, False):
        keras.utils.set_random_seed(0)
        model = tiny(latent_dim=2, gumbel_categories=3, gumbel_anneal_rate=0.05, gumbel_anneal_every=1,
                     gumbel_temperature_min=0.1)
        model.compile(optimizer=keras.optimizers.SGD(1e-2), steps_per_execution=4, jit_compile=jit_compile)
        assert model.compiles_training_loop == jit_compile
        history = model.fit(bits(100), epochs=2, batch_size=8, shuffle=False, verbose=0).history
        results.append((history, model.get_weights(), float(model.temperature)))
    (compiled, compiled_weights, compiled_tau), (plain, plain_weights, plain_tau) = results
    assert compiled_tau == pytest.approx(math.exp(-0.05 * 25)) and compiled_tau == pytest.approx(plain_tau)
    for name in plain:
        np.testing.assert_allclose(compiled[name], plain[name], rtol=METRICS_RTOL, err_msg=name)
    for a, b in zip(compiled_weights, plain_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=METRICS_RTOL, atol=WEIGHTS_ATOL)


@pytest.mark.parametrize("options, message", [
    ({"gumbel_categories": 1}, "gumbel_categories must be >= 2"),
    ({"gumbel_temperature": 0.0}, "gumbel_temperature must be > 0, got 0.0"),
    ({"gumbel_temperature": 0.4}, r"gumbel_temperature_min must be > 0 and <= gumbel_temperature \(0.4\)"),
    ({"gumbel_anneal_every": 0}, "gumbel_anneal_every must be >= 1"),
])
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        tiny(**options)


def test_the_encoder_must_hold_one_relaxation_and_match_the_decoder():
    logits = vae_tf.build_mlp_encoder(SHAPE, 6, (8,), variational=False)
    with pytest.raises(ValueError, match="exactly one vae_tf.GumbelSoftmax layer"):
        vae_tf.models.GumbelVAE(logits, vae_tf.build_mlp_decoder(SHAPE, 6))
    encoder = vae_tf.models.gumbel.build_categorical_encoder(logits, 3)
    with pytest.raises(ValueError, match="the encoder gives 6 logits, the decoder takes codes of 9"):
        vae_tf.models.GumbelVAE(encoder, vae_tf.build_mlp_decoder(SHAPE, 9))


def test_the_exported_sample_decodes_one_hot_prior_draws(tmp_path):
    model = tiny(latent_dim=2, gumbel_categories=3)
    served = tf.saved_model.load(str(vae_tf.export_saved_model(model, tmp_path, name="gumbel")))
    images = served.signatures["sample"](num_samples=tf.constant(4), seed=tf.constant(7))["features"]
    codes = model.prior.sample(4, seed=tf.stack([tf.constant(7), 0]))
    np.testing.assert_allclose(images, model.decode(codes), rtol=1e-5, atol=1e-6)
    decoded = served.signatures["decode"](z=tf.constant(np.eye(6, dtype="float32")))["features"]
    assert decoded.shape == (6, *SHAPE)
