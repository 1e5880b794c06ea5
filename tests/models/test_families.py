"""The core every family shares: the registry, self-description, old files, and each
family's identities (IWAE, VampPrior, beta-TCVAE)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis import evaluation
from vae_tf.models.signatures import SCORE_SEED
from vae_tf.serving.export import export_saved_model
from vae_tf.core.layers import reparameterize
from vae_tf.models import registry

from helpers import families, mixture_log_prob

SHAPE = (6,)


def tiny(kind, **options):
    num_classes = 3 if registry.get(kind).conditional else None
    return vae_tf.make_model(kind, "mlp", SHAPE, 2, num_classes=num_classes, hidden_units=(8,),
                             seed=1, **options)


def binary_data(n=64, seed=0):
    """Random bits, each repeated twice: 3 bits of information in 6 pixels, so there is
    structure to learn."""
    bits = np.random.default_rng(seed).random((n, SHAPE[0] // 2)) > 0.5
    return np.repeat(bits, 2, axis=1).astype("float32")


def test_registry_lists_each_family_with_typed_options():
    assert set(registry.names()) >= {"ae", "vae", "cvae", "iwae", "tcvae", "vqvae", "wae", "infovae"}  # the built-in ones
    for name in registry.names():
        family = registry.get(name)
        assert family.name == name and family.summary
        assert family.model_class.is_variational == family.variational
        assert family.model_class.is_conditional == family.conditional
        for option in family.options:
            assert option.type in (int, float, str, bool) and option.help
            assert option.validate(option.default) == option.default
    with pytest.raises(ValueError, match="kind must be one of"):
        registry.get("gan")
    with pytest.raises(ValueError, match="train_samples must be >= 1"):
        tiny("iwae", train_samples=0)
    with pytest.raises(ValueError, match="has no option 'train_samples'"):
        tiny("vae", train_samples=3)
    with pytest.raises(ValueError, match="prior must be one of"):
        tiny("vae", prior="laplace")


@pytest.mark.parametrize("kind", families("mlp"))  # tiny(): MLPs on vectors
def test_models_describe_themselves(kind):
    model = tiny(kind)
    x = binary_data(5)
    labels = np.array([0, 1, 2, 0, 1], "int32") if model.is_conditional else None
    codes = model.encode(x, labels)
    assert tuple(codes) == model.encode_outputs and model.code_name in codes
    # It samples when it has a prior: every variational model, and a WAE (N(0, I), with
    # no posterior, so no ELBO).
    assert model.can_sample == (getattr(model, "prior", None) is not None)
    terms = model.per_example_terms(x, labels, seed=3)
    assert {"reconstruction", model.score_term} <= set(terms)
    assert all(v.shape == (5,) for v in terms.values())
    # A fixed seed gives the same terms: what the export `score` signature relies on.
    again = model.per_example_terms(x, labels, seed=3)
    np.testing.assert_array_equal(terms[model.score_term], again[model.score_term])
    if model.is_variational:
        np.testing.assert_allclose(terms["neg_elbo"], terms["reconstruction"] + terms["kl"], rtol=1e-6)


def save_in_version_0_1_format(model, path):
    """Saves `model` as vae_tf 0.1 wrote it: the classes registered under the module
    "vae_tf.models" (one module then), no `prior` in the VAE/CVAE config and its empty
    weights group absent, no `seed` in the AE config. These are all the differences
    between a 0.1 file and today's for the same model (checked against files 0.1 wrote)."""
    import json
    import zipfile

    import h5py

    current = path.with_name("current.keras")
    model.save(current)
    with zipfile.ZipFile(current) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["module"] = "vae_tf.models"
    config["config"].pop("prior", None)
    if not model.is_variational:
        config["config"].pop("seed")
    files["config.json"] = json.dumps(config).encode()
    weights = path.with_name("model.weights.h5")
    weights.write_bytes(files["model.weights.h5"])
    with h5py.File(weights, "r+") as store:
        for name in list(store["layers"]):
            if name.startswith("standard_normal"):
                del store["layers"][name]
    files["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_files_saved_by_version_0_1_still_load(kind, tmp_path):
    x = binary_data(5)
    y = np.array([0, 1, 2, 0, 1], "int32")
    inputs = [x, y] if kind == "cvae" else x
    model = tiny(kind)
    model.compile()
    model.fit(x, y, epochs=1, batch_size=5, verbose=0)  # 0.1 files hold a built optimizer
    save_in_version_0_1_format(model, tmp_path / "old.keras")

    loaded = keras.saving.load_model(tmp_path / "old.keras", safe_mode=True)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)), rtol=1e-6)
    for mine, theirs in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))  # optimizer restored
    loaded.fit(x, y, epochs=1, batch_size=5, verbose=0)


def test_export_score_is_the_models_own_per_example_score():
    for kind in ("ae", "vae"):
        model = tiny(kind)
        x = binary_data(4)
        score, _ = model.export_signatures()["score"]
        expected = model.per_example_terms(x, seed=SCORE_SEED)[model.score_term]
        np.testing.assert_allclose(score(tf.constant(x))["neg_elbo"], expected, rtol=1e-6)


# --- IWAE ---------------------------------------------------------------------


def same_weights(kind, source, **options):
    model = tiny(kind, **options)
    model.set_weights(source.get_weights())
    return model


def test_iwae_with_one_sample_is_the_vae_loss_for_the_same_weights_and_noise():
    """With a learned prior both use the Monte-Carlo KL: the losses agree exactly."""
    x = binary_data()
    vae = tiny("vae", prior="vamp", prior_components=3)
    iwae = same_weights("iwae", vae, train_samples=1, prior="vamp", prior_components=3)
    for _ in range(3):  # the same noise stream, step after step
        vae_terms = vae.compute_terms(x, training=True)
        iwae_terms = iwae.compute_terms(x, training=True)
        np.testing.assert_allclose(iwae_terms["loss"], vae_terms["loss"], rtol=1e-6)


def test_iwae_with_one_sample_matches_the_analytic_kl_vae_in_expectation():
    """N(0, I) prior: the VAE uses the exact KL, IWAE (K = 1) its one-draw estimate at the
    same z; the difference has mean zero."""
    x = binary_data()
    vae = tiny("vae")
    iwae = same_weights("iwae", vae, train_samples=1)
    differences = []
    for _ in range(200):
        differences.append(float(iwae.compute_terms(x, training=True)["loss"])
                           - float(vae.compute_terms(x, training=True)["loss"]))
    differences = np.array(differences)
    assert abs(differences.mean()) < 4 * differences.std() / np.sqrt(len(differences))
    assert differences.std() > 0  # they do differ draw by draw


def test_iwae_bound_tightens_with_more_samples():
    x = binary_data(256)
    losses = {}
    for k in (1, 50):
        iwae = tiny("iwae", train_samples=k)
        losses[k] = np.mean([float(iwae.compute_terms(x)["loss"]) for _ in range(5)])
    assert losses[50] < losses[1]


def test_importance_weights_use_the_vamp_prior_density():
    model = tiny("iwae", prior="vamp", prior_components=3)
    x = binary_data(4)
    codes = model.encode(x)
    seed = (5, 0)
    log_w = np.asarray(model.log_importance_weights(x, codes, num_samples=2, seed=seed))
    z = np.asarray(reparameterize(codes["z_mean"], codes["z_log_var"], seed, num_samples=2))
    pseudo = model.encode(np.clip(np.asarray(model.prior.pseudo_inputs), 0, 1))
    means, variances = np.asarray(pseudo["z_mean"]), np.exp(np.asarray(pseudo["z_log_var"]))
    mean, var = np.asarray(codes["z_mean"]), np.exp(np.asarray(codes["z_log_var"]))
    for k in range(2):
        log_prior = mixture_log_prob(z[k], np.full(3, 1 / 3), means, variances)
        log_q = -0.5 * np.sum(np.log(2 * np.pi * var) + (z[k] - mean) ** 2 / var, axis=1)
        logits = model.decoder(z[k])
        log_px = -np.asarray(model.likelihood.negative_log_likelihood(x, logits))
        np.testing.assert_allclose(log_w[k], log_px + log_prior - log_q, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind, options", [
    ("iwae", {"train_samples": 3}),
    ("vae", {"prior": "vamp", "prior_components": 4}),
    ("iwae", {"train_samples": 2, "prior": "vamp", "prior_components": 4}),
])
def test_family_trains_round_trips_exports_and_evaluates(kind, options, tmp_path):
    x = binary_data(256)
    model = tiny(kind, **options)
    model.compile()
    before = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
    model.fit(x, batch_size=32, epochs=4, verbose=0)
    after = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    assert after["loss"] < before and set(after) == set(model.loss_terms)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    for key in ("prior", "beta", "train_samples"):
        assert restored.get_config().get(key) == model.get_config().get(key)
    np.testing.assert_array_equal(np.asarray(restored(x[:8])), np.asarray(model(x[:8])))
    np.testing.assert_array_equal(restored.sample(4, seed=2), model.sample(4, seed=2))
    log_p = evaluation.log_likelihoods(restored, x[:32], num_samples=20)
    neg_elbo = evaluation.elbo(restored, x[:32])["neg_elbo"]
    assert np.all(np.isfinite(log_p)) and -log_p.mean() < neg_elbo + 0.5
    served = tf.saved_model.load(str(export_saved_model(restored, tmp_path / "sm", name="m")))
    assert set(served.signatures) == {
        "serving_default", "reconstruct", "encode", "decode", "sample", "score"}
    sample = served.signatures["sample"]
    drawn = [sample(num_samples=tf.constant(3), seed=tf.constant(7))[restored.input_name].numpy()
             for _ in range(2)]
    np.testing.assert_array_equal(*drawn)
    assert drawn[0].shape == (3, *SHAPE)


# --- beta-TCVAE -----------------------------------------------------------------


def factorized_posteriors(batch, latent_dim=3, seed=0):
    """Posterior means independent across dimensions, equal variances: q(z) factorizes."""
    rng = np.random.default_rng(seed)
    z_mean = rng.normal(size=(batch, latent_dim)).astype("float32")
    z_log_var = np.full((batch, latent_dim), np.log(0.5), "float32")
    return reparameterize(z_mean, z_log_var, seed=1), z_mean, z_log_var


def test_total_correlation_is_near_zero_for_a_factorized_posterior_batch():
    from vae_tf.models.tcvae import decompose_kl
    from vae_tf.core.priors import StandardNormal

    z, z_mean, z_log_var = factorized_posteriors(2000)
    parts = decompose_kl(z, z_mean, z_log_var, StandardNormal(3), dataset_size=2000, estimator="mss")
    assert abs(float(parts["total_correlation"])) < 0.02
    # A correlated aggregate (z_2 = z_1) has a clearly positive TC.
    z_mean[:, 1] = z_mean[:, 0]
    z = reparameterize(z_mean, z_log_var, seed=1)
    parts = decompose_kl(z, z_mean, z_log_var, StandardNormal(3), dataset_size=2000, estimator="mss")
    assert float(parts["total_correlation"]) > 0.3


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_the_three_terms_sum_to_the_monte_carlo_kl(estimator):
    from vae_tf.models.tcvae import decompose_kl
    from vae_tf.core.priors import StandardNormal, gaussian_log_prob

    z, z_mean, z_log_var = factorized_posteriors(64)
    prior = StandardNormal(3)
    parts = decompose_kl(z, z_mean, z_log_var, prior, dataset_size=1000, estimator=estimator)
    full = np.mean(gaussian_log_prob(z, z_mean, z_log_var) - prior.log_prob(z))
    assert float(sum(parts.values())) == pytest.approx(float(full), abs=1e-4)


def test_tcvae_trains_reports_the_terms_and_weighs_tc_by_a_variable(tmp_path):
    x = binary_data(256)
    model = tiny("tcvae", tc_weight=4.0, dataset_size=256)
    model.compile()
    history = model.fit(x, batch_size=64, epochs=8, verbose=0).history
    assert set(history) == set(model.loss_terms)
    assert history["loss"][-1] < history["loss"][0]
    terms = model.compute_terms(x)
    expected = (terms["reconstruction"] + terms["mutual_information"] + terms["dimension_kl"]
                + 4.0 * terms["total_correlation"])
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-5)
    model.tc_weight.assign(0.0)
    assert not model.tc_weight.trainable
    path = tmp_path / "tcvae.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert float(restored.tc_weight) == 0.0 and restored.estimator == "mss"
    np.testing.assert_array_equal(np.asarray(restored(x[:4])), np.asarray(model(x[:4])))
    assert "sample" in restored.export_signatures()
    with pytest.raises(ValueError, match="tc_estimator must be one of"):
        tiny("tcvae", tc_estimator="naive")
