"""The MMD families (WAE-MMD, InfoVAE) and their estimator: kernel values by hand, the
U-statistic's identities, InfoVAE reducing to the VAE, what each model claims to have."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis import anomaly, evaluation
from vae_tf.core import mmd as mmd_lib
from vae_tf.models import registry

SHAPE = (6,)


def tiny(kind, **options):
    return vae_tf.make_model(kind, "mlp", SHAPE, 2, hidden_units=(8,), seed=1, **options)


def binary_data(n=64, seed=0):
    bits = np.random.default_rng(seed).random((n, SHAPE[0] // 2)) > 0.5
    return np.repeat(bits, 2, axis=1).astype("float32")


# --- the kernels and the estimator ------------------------------------------------


def test_kernel_values_against_hand_computed_numbers():
    """d = 2, sigma^2 = 1: C = 4. x = (0, 0), y = (1, 1): ||x - y||^2 = 2, so IMQ = 4/6
    and RBF = exp(-2/4); y = (3, 0): 9, IMQ = 4/13, RBF = exp(-9/4); k(x, x) = 1."""
    x = np.array([[0.0, 0.0]])
    y = np.array([[1.0, 1.0], [3.0, 0.0], [0.0, 0.0]])
    assert mmd_lib.kernel_scale(2) == 4.0
    np.testing.assert_allclose(mmd_lib.kernel_matrix(x, y, "imq"), [[2 / 3, 4 / 13, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(mmd_lib.kernel_matrix(x, y, "rbf"), [[np.exp(-0.5), np.exp(-2.25), 1.0]],
                               rtol=1e-6)
    # Seven scales: sum_s sC / (sC + 2) at ||x - y||^2 = 2, sum_s exp(-2 / (sC)).
    scales = np.array(mmd_lib.SCALES) * 4.0
    multi_imq = mmd_lib.kernel_matrix(x, y[:1], "imq", multiscale=True)
    multi_rbf = mmd_lib.kernel_matrix(x, y[:1], "rbf", multiscale=True)
    assert float(multi_imq[0, 0]) == pytest.approx(np.sum(scales / (scales + 2.0)), rel=1e-6)
    assert float(multi_rbf[0, 0]) == pytest.approx(np.sum(np.exp(-2.0 / scales)), rel=1e-6)
    with pytest.raises(ValueError, match="kernel must be one of"):
        mmd_lib.kernel_matrix(x, y, "laplace")


def brute_force_mmd(x, y, k):
    """The U-statistic of WAE Algorithm 2, summed pair by pair in float64."""
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("kernel", mmd_lib.KERNELS)
def test_the_estimate_is_the_papers_u_statistic(kernel):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 2.0, size=(5, 3))
    c = 2 * 3 * 1.0
    k = (lambda a, b: c / (c + np.sum((a - b) ** 2))) if kernel == "imq" else (
        lambda a, b: np.exp(-np.sum((a - b) ** 2) / c))
    assert float(mmd_lib.mmd(x, y, kernel)) == pytest.approx(brute_force_mmd(x, y, k), abs=1e-6)


@pytest.mark.parametrize("kernel", mmd_lib.KERNELS)
def test_two_samples_of_one_distribution_give_zero_on_average_shrinking_with_n(kernel):
    """Unbiased: over 200 pairs of samples of N(0, I) the mean estimate is within its
    standard error of 0, where the biased V-statistic (diagonals kept) is clearly
    positive; the scatter falls about as 1/n; N(0.5, I) against N(0, I) is positive."""
    rng = np.random.default_rng(1)
    spreads = {}
    for n in (25, 100):
        draws = rng.normal(size=(200, 2, n, 4)).astype("float32")
        estimates = np.array([float(mmd_lib.mmd(a, b, kernel)) for a, b in draws])
        error = estimates.std() / np.sqrt(len(estimates))
        assert abs(estimates.mean()) < 3 * error
        spreads[n] = estimates.std()
        biased = np.array([float(np.mean(mmd_lib.kernel_matrix(a, a, kernel)) + np.mean(mmd_lib.kernel_matrix(b, b, kernel))
                                 - 2 * np.mean(mmd_lib.kernel_matrix(a, b, kernel))) for a, b in draws[:50]])
        assert biased.mean() > 10 * error
    assert spreads[100] < spreads[25] / 2.5  # 1/n would be / 4
    shifted = [float(mmd_lib.mmd(rng.normal(0.5, 1.0, (100, 4)), rng.normal(size=(100, 4)), kernel))
               for _ in range(20)]
    assert min(shifted) > 0 and np.mean(shifted) > 10 * spreads[100]


# --- WAE ------------------------------------------------------------------------


def test_wae_loss_is_reconstruction_plus_lambda_mmd_with_a_deterministic_encoder():
    model = tiny("wae", mmd_weight=3.0)
    x = binary_data(32)
    terms = model.compute_terms(x, training=True)
    assert float(terms["loss"]) == pytest.approx(float(terms["reconstruction"] + 3.0 * terms["mmd"]), rel=1e-6)
    np.testing.assert_array_equal(model.encode(x)["z"], model.encode(x)["z"])  # no noise in the code
    assert model.code_log_var(x) is None
    recon = model.per_example_terms(x)["reconstruction"]
    assert float(terms["reconstruction"]) == pytest.approx(float(np.mean(recon)), rel=1e-6)


def test_wae_samples_from_its_prior_but_reports_no_likelihood_it_does_not_have():
    model = tiny("wae")
    x = binary_data(16)
    assert not model.is_variational and model.can_sample
    assert model.sample(3, seed=0).shape == (3, *SHAPE)
    assert model.held_out_metrics == ("reconstruction",)
    assert set(evaluation.held_out_metrics(model, x)) == {"reconstruction", "examples"}
    with pytest.raises(ValueError, match="needs a variational model"):
        evaluation.elbo(model, x)
    with pytest.raises(ValueError, match="needs a variational model"):
        evaluation.log_likelihoods(model, x)
    assert anomaly.available_methods(model) == ("reconstruction",)  # vectors: no PNG complexity
    assert "neg_elbo" not in model.per_example_terms(x)
    signatures = model.export_signatures()
    assert {"sample", "score", "encode", "decode"} <= set(signatures)
    score, _ = signatures["score"]
    np.testing.assert_allclose(score(tf.constant(x))["neg_elbo"], model.per_example_terms(x)["reconstruction"],
                               rtol=1e-6)


@pytest.mark.parametrize("kind", ["wae", "infovae"])
def test_trains_and_round_trips_with_safe_mode(kind, tmp_path):
    x = binary_data(256)
    model = tiny(kind, mmd_kernel="imq", mmd_multiscale=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    model.fit(x, batch_size=32, epochs=8, verbose=0)
    after = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    assert set(after) == set(model.loss_terms) and after["loss"] < before["loss"]
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    for key in ("mmd_weight", "info_alpha", "info_lambda", "mmd_kernel", "mmd_multiscale", "seed"):
        assert restored.get_config().get(key) == model.get_config().get(key)
    np.testing.assert_array_equal(np.asarray(restored(x[:8])), np.asarray(model(x[:8])))
    np.testing.assert_array_equal(restored.sample(4, seed=2), model.sample(4, seed=2))
    # The prior draws continue the saved stream: the next training terms agree.
    mine, theirs = model.compute_terms(x[:32], training=True), restored.compute_terms(x[:32], training=True)
    for name, value in mine.items():
        assert float(theirs[name]) == pytest.approx(float(value), rel=1e-5)


# --- InfoVAE --------------------------------------------------------------------


def test_infovae_with_alpha_0_and_lambda_1_is_the_vae_loss_for_the_same_weights_and_noise():
    """The paper: alpha = 0, lambda = 1 gives the ELBO (the KL weighs 1, the MMD 0)."""
    x = binary_data()
    vae = tiny("vae")
    info = tiny("infovae", info_alpha=0.0, info_lambda=1.0)
    info.set_weights(vae.get_weights())  # the same weights and the same Sampling seed
    for _ in range(3):  # the same noise stream, step after step
        vae_terms = vae.compute_terms(x, training=True)
        info_terms = info.compute_terms(x, training=True)
        np.testing.assert_allclose(info_terms["loss"], vae_terms["loss"], rtol=1e-6)
        np.testing.assert_allclose(info_terms["kl"], vae_terms["kl"], rtol=1e-6)
    assert info.held_out_metrics == vae.held_out_metrics == ("elbo", "iw_log_likelihood")
    np.testing.assert_allclose(evaluation.elbo(info, x)["neg_elbo"], evaluation.elbo(vae, x)["neg_elbo"],
                               rtol=1e-6)


@pytest.mark.parametrize("alpha, lam", [(1.0, 1.0), (0.0, 1000.0), (0.5, 2.0), (-1.0, 3.0)])
def test_infovae_weighs_kl_by_1_minus_alpha_and_mmd_by_alpha_plus_lambda_minus_1(alpha, lam):
    model = tiny("infovae", info_alpha=alpha, info_lambda=lam)
    terms = model.compute_terms(binary_data(), training=True)
    expected = terms["reconstruction"] + (1 - alpha) * terms["kl"] + (alpha + lam - 1) * terms["mmd"]
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-5, abs=1e-4)


def test_infovae_options_are_checked_together_and_defaults_are_named():
    family = registry.get("infovae")
    defaults = {o.name: o.default for o in family.options}
    assert defaults == {"info_alpha": 0.0, "info_lambda": 1000.0, "mmd_kernel": "rbf", "mmd_multiscale": False}
    assert {o.name: o.default for o in registry.get("wae").options} == {
        "mmd_weight": 10.0, "mmd_kernel": "imq", "mmd_multiscale": True}
    with pytest.raises(ValueError, match=r"info_alpha \+ info_lambda must be >= 1"):
        tiny("infovae", info_alpha=0.0, info_lambda=0.5)
    with pytest.raises(ValueError, match="info_alpha must be <= 1"):
        tiny("infovae", info_alpha=1.5)
    with pytest.raises(ValueError, match="beta and free_bits apply only to variational kinds"):
        vae_tf.make_model("wae", "mlp", SHAPE, 2, beta=2.0)
    with pytest.raises(ValueError, match="has no option 'prior'"):
        tiny("infovae", prior="vamp")


@pytest.mark.parametrize("kind", ["wae", "infovae"])
def test_trains_under_mirrored_with_the_mmd_of_each_replicas_batch(kind, real_batch, mirrored_strategy):
    """Each replica estimates the MMD on its own share of the batch (a U-statistic of a
    batch is not a mean over examples), so only training, not equality with one device."""
    x, _ = real_batch
    with mirrored_strategy.scope():
        model = vae_tf.make_model(kind, "mlp", (28, 28, 1), 3, hidden_units=(32,), seed=0)
        model.compile()
    history = model.fit(x, batch_size=128, epochs=3, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    assert np.all(np.isfinite(history["mmd"]))
