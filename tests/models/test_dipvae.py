"""DIP-VAE-I and DIP-VAE-II (Kumar et al. 2018): the VAE loss plus lambda_od * sum_{i != j}
C_ij^2 + lambda_d * sum_i (C_ii - 1)^2, C a code covariance estimated on the batch."""

import keras
import numpy as np
import pytest

import vae_tf
from vae_tf.config import ConfigError, ModelConfig, RunConfig
from vae_tf.models.dipvae import code_covariance, covariance_deviation
from vae_tf.runs.training import build_model, load_config_data

SHAPE = (6,)


def tiny(kind="dipvae", latent_dim=2, **options):
    return vae_tf.make_model(kind, "mlp", SHAPE, latent_dim, hidden_units=(16,), seed=1, **options)


def binary_data(n=256, seed=0):
    """3 random bits, each repeated twice: 3 bits of information in 6 pixels."""
    bits = np.random.default_rng(seed).random((n, SHAPE[0] // 2)) > 0.5
    return np.repeat(bits, 2, axis=1).astype("float32")


def numpy_penalty_parts(z_mean, z_log_var, dip_type):
    """(sum_{i != j} C_ij^2, sum_i (C_ii - 1)^2) in float64, C from numpy's covariance."""
    covariance = np.cov(np.asarray(z_mean, "float64"), rowvar=False, bias=True)
    if dip_type == "ii":
        covariance = covariance + np.diag(np.exp(np.asarray(z_log_var, "float64")).mean(axis=0))
    off = covariance - np.diag(np.diag(covariance))
    return np.sum(off ** 2), np.sum((np.diag(covariance) - 1.0) ** 2)


def test_codes_with_identity_covariance_have_no_penalty():
    # Columns of a Hadamard matrix: mean 0, variance 1, orthogonal, so Cov[mu] = I exactly.
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], "float32")
    z_mean = hadamard[:, 1:]
    for dip_type, z_mean_scale, variance in (("i", 1.0, 1e-9), ("ii", np.sqrt(0.75), 0.25)):
        # DIP-VAE-II: Cov[mu] = 0.75 I plus a mean posterior variance of 0.25 on the diagonal.
        z_log_var = np.full_like(z_mean, np.log(variance))
        covariance = code_covariance(z_mean * z_mean_scale, z_log_var, dip_type)
        np.testing.assert_allclose(covariance, np.eye(3), atol=1e-6)
        assert [float(v) for v in covariance_deviation(covariance)] == pytest.approx([0.0, 0.0], abs=1e-10)


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_the_penalty_matches_numpy_on_random_codes(dip_type):
    rng = np.random.default_rng(0)
    z_mean = (rng.normal(size=(64, 5)) @ rng.normal(size=(5, 5))).astype("float32")  # correlated
    z_log_var = rng.normal(size=(64, 5)).astype("float32")
    off, diagonal = covariance_deviation(code_covariance(z_mean, z_log_var, dip_type))
    expected = numpy_penalty_parts(z_mean, z_log_var, dip_type)
    np.testing.assert_allclose([float(off), float(diagonal)], expected, rtol=1e-4)
    assert expected[0] > 1.0  # the codes are correlated: there is something to penalize


def test_type_ii_adds_the_mean_posterior_variance_on_the_diagonal():
    rng = np.random.default_rng(1)
    z_mean = rng.normal(size=(32, 4)).astype("float32")
    z_log_var = rng.normal(size=(32, 4)).astype("float32")
    difference = np.asarray(code_covariance(z_mean, z_log_var, "ii")) - np.asarray(code_covariance(z_mean, z_log_var, "i"))
    np.testing.assert_allclose(difference, np.diag(np.exp(z_log_var).mean(axis=0)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_the_loss_is_the_vae_loss_plus_the_weighted_penalty(dip_type):
    """Same weights, same draw of z: DIP-VAE's loss less the VAE's is the penalty on the
    batch's posteriors, computed here in numpy."""
    x = binary_data(32)
    dip = tiny(latent_dim=3, dip_type=dip_type, dip_lambda_od=2.0, dip_lambda_d=3.0)
    vae, reader = tiny("vae", latent_dim=3), tiny("vae", latent_dim=3)
    vae.set_weights(dip.get_weights())
    reader.set_weights(dip.get_weights())
    codes = reader.encode(x)  # a third copy: encode draws z, which moves the copies' noise apart
    off, diagonal = numpy_penalty_parts(codes["z_mean"], codes["z_log_var"], dip_type)
    for _ in range(2):  # the same noise stream, step after step
        ours, theirs = dip.compute_terms(x, training=True), vae.compute_terms(x, training=True)
        np.testing.assert_allclose(float(ours["loss"]) - float(theirs["loss"]), 2.0 * off + 3.0 * diagonal,
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose([float(ours["covariance_off_diagonal"]), float(ours["covariance_diagonal"])],
                                   [off, diagonal], rtol=1e-4, atol=1e-6)


def test_lambda_d_defaults_to_the_papers_rule_and_a_given_value_wins():
    assert (tiny().dip_type, tiny().lambda_od, tiny().lambda_d) == ("i", 10.0, 100.0)
    assert tiny(dip_type="ii").lambda_d == 10.0
    assert tiny(dip_lambda_od=5.0).lambda_d == 50.0
    assert tiny(dip_type="ii", dip_lambda_od=5.0).lambda_d == 5.0
    assert tiny(dip_lambda_od=5.0, dip_lambda_d=0.0).lambda_d == 0.0
    assert tiny(dip_lambda_d=None).lambda_d == 100.0  # None: not given


def test_the_run_config_passes_the_options_and_leaves_lambda_d_to_the_rule(small_config):
    config = small_config(model="dipvae", dip_type="ii", dip_lambda_od=4.0)
    assert config.model.family_options() == {"dip_type": "ii", "dip_lambda_od": 4.0}
    data = load_config_data(config)
    model = build_model(config, data)
    assert (model.dip_type, model.lambda_od, model.lambda_d) == ("ii", 4.0, 4.0)
    assert build_model(small_config(model="dipvae", dip_lambda_d=7.0), data).lambda_d == 7.0


@pytest.mark.parametrize("model, message", [
    (dict(kind="dipvae", dip_type="iii"), "--dip-type must be one of i, ii"),
    (dict(kind="dipvae", dip_lambda_od=-1.0), "--dip-lambda-od must be >= 0"),
    (dict(kind="dipvae", dip_lambda_d=-1.0), "--dip-lambda-d must be >= 0"),
    (dict(kind="tcvae", dip_lambda_d=1.0), "--dip-lambda-d applies only to --model dipvae"),
])
def test_bad_options_are_one_clear_error(model, message):
    with pytest.raises(ConfigError, match=message.replace("-", r"\-")):
        RunConfig(model=ModelConfig(**model))


def test_a_learned_prior_is_refused():
    from vae_tf.core.priors import make

    encoder, decoder = tiny().encoder, tiny().decoder
    with pytest.raises(ValueError, match="DIP-VAE needs the standard normal prior"):
        vae_tf.models.DIPVAE(encoder, decoder, prior=make("vamp", 2, SHAPE, 3))


def test_dipvae_trains_towards_identity_covariance_and_round_trips(tmp_path):
    x = binary_data()
    model = tiny(latent_dim=3, dip_type="ii", dip_lambda_od=20.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=64, epochs=8, verbose=0).history
    assert set(history) == set(model.loss_terms)
    # At the start the posterior means barely vary: Cov_q(z) is far from I on its diagonal.
    assert history["covariance_diagonal"][-1] < 0.2 * history["covariance_diagonal"][0]
    path = tmp_path / "dip.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert (restored.dip_type, restored.lambda_od, restored.lambda_d) == ("ii", 20.0, 20.0)
    np.testing.assert_array_equal(np.asarray(restored(x[:4])), np.asarray(model(x[:4])))
