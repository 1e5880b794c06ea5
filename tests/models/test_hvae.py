"""The two-stochastic-layer VAE (vae_tf.models.hvae): it reduces to the one-layer model when
its top layer does nothing, and its importance weights give the exact marginal of a
linear-Gaussian hierarchy."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis import evaluation
from vae_tf.core.layers import gaussian_kl
from vae_tf.core.likelihoods import Gaussian
from vae_tf.models.hvae import HVAE, build_top_networks
from vae_tf.models.iwae import IWAE
from vae_tf.serving.export import export_saved_model

SHAPE = (8, 8, 1)


def binary_images(n, seed=0):
    return (np.random.default_rng(seed).random((n, *SHAPE)) > 0.5).astype("float32")


def tiny(**options):
    options = {"top_latent_dim": 2, "top_hidden_units": 8, **options}
    return vae_tf.make_model("hvae", "mlp", SHAPE, 3, hidden_units=(16,), seed=1, **options)


def make_top_ineffective(model):
    """q(z2|z1) = p(z2) = N(0, I) and p(z1|z2) = N(0, I), whatever z1 and z2."""
    for network in (model.top_encoder, model.top_decoder):
        for name in ("mean", "log_var"):
            layer = network.get_layer(name)
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


@pytest.mark.parametrize("train_samples", [1, 3])
def test_an_ineffective_top_layer_gives_the_one_layer_loss_on_the_same_draws(train_samples):
    model = tiny(train_samples=train_samples)
    make_top_ineffective(model)
    one_layer = IWAE(model.encoder, model.decoder, train_samples=train_samples)
    x = binary_images(5)
    state = model.sampling.seed_generator.state
    start = np.asarray(state)
    two = model.compute_terms(x, training=True)
    state.assign(start)  # the same z1 draws again
    one = one_layer.compute_terms(x, training=True)
    for name in ("loss", "reconstruction"):
        np.testing.assert_allclose(float(two[name]), float(one[name]), rtol=1e-5)
    # The first draw's KL is log q(z1|x) - log N(z1; 0, I): the one-layer VAE's analytic
    # KL in expectation (the z2 terms cancel exactly).
    kls = np.stack([model.per_example_terms(x, seed=(i, 0))["kl"] for i in range(400)])
    z1_mean, z1_log_var, _ = model.encoder(x)
    analytic = np.asarray(keras.ops.sum(gaussian_kl(z1_mean, z1_log_var), axis=-1))
    np.testing.assert_allclose(kls.mean(0), analytic, atol=4 * kls.std(0).max() / math.sqrt(400) + 1e-3)


def linear_gaussian_hvae(a=0.8, c=0.3, s1=0.6, sigma=0.5, scale=1.0):
    """z2 ~ N(0, 1), z1 | z2 ~ N(a z2 + c, s1^2), x | z1 ~ N(w z1 + b, sigma^2 I) in 3-D, with
    linear networks set to the exact posteriors q(z1|x) = p(z1|x) and q(z2|z1) = p(z2|z1),
    their variances multiplied by `scale`. Returns (model, exact log p(x) function)."""
    encoder = vae_tf.build_mlp_encoder((3,), 1, hidden_units=())
    decoder = vae_tf.build_mlp_decoder((3,), 1, hidden_units=())
    top_encoder, top_decoder = build_top_networks(1, 1, 1, activation="linear")
    w, b = np.array([1.0, -0.5, 2.0]), np.array([0.1, 0.2, -0.3])
    decoder.get_layer("dense_out").set_weights([w[None], b])
    for network in (top_encoder, top_decoder):
        for name in ("dense_0", "dense_1"):
            network.get_layer(name).set_weights([np.ones((1, 1)), np.zeros(1)])
    top_decoder.get_layer("mean").set_weights([np.array([[a]]), np.array([c])])
    top_decoder.get_layer("log_var").set_weights([np.zeros((1, 1)), np.array([math.log(s1**2)])])
    # p(z2|z1): prior N(0, 1), observation z1 = a z2 + c + N(0, s1^2).
    var2 = 1.0 / (1.0 + a**2 / s1**2)
    top_encoder.get_layer("mean").set_weights([np.array([[var2 * a / s1**2]]), np.array([-var2 * a * c / s1**2])])
    top_encoder.get_layer("log_var").set_weights([np.zeros((1, 1)), np.array([math.log(scale * var2)])])
    # p(z1|x): marginal prior N(c, a^2 + s1^2), observation x = w z1 + b + N(0, sigma^2 I).
    v1 = a**2 + s1**2
    var1 = 1.0 / (1.0 / v1 + w @ w / sigma**2)
    gain = var1 * w / sigma**2
    encoder.get_layer("z_mean").set_weights([gain[:, None], np.array([var1 * c / v1 - gain @ b])])
    encoder.get_layer("z_log_var").set_weights([np.zeros((3, 1)), np.array([math.log(scale * var1)])])
    model = HVAE(encoder, decoder, top_encoder, top_decoder, likelihood=Gaussian(sigma=sigma))
    covariance = v1 * np.outer(w, w) + sigma**2 * np.eye(3)

    def exact(x):
        centred = x - (w * c + b)
        return -0.5 * (np.einsum("ni,ij,nj->n", centred, np.linalg.inv(covariance), centred)
                       + np.log(np.linalg.det(covariance)) + 3 * math.log(2 * math.pi))

    return model, exact


def test_the_exact_posteriors_make_every_importance_weight_the_marginal():
    model, exact = linear_gaussian_hvae()
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    log_w = np.asarray(model.log_importance_weights(x, model.encode(x), num_samples=5, seed=(1, 0)))
    np.testing.assert_allclose(log_w, np.broadcast_to(exact(x), log_w.shape), atol=1e-3)
    np.testing.assert_allclose(evaluation.log_likelihoods(model, x, num_samples=1), exact(x), atol=1e-3)
    terms = model.per_example_terms(x, seed=3)
    np.testing.assert_allclose(-np.asarray(terms["neg_elbo"]), exact(x), atol=1e-3)


def test_the_importance_weighted_estimate_converges_to_the_exact_marginal():
    model, exact = linear_gaussian_hvae(scale=3.0)  # both proposals too broad
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    errors = [np.abs(evaluation.log_likelihoods(model, x, num_samples=k) - exact(x)).mean()
              for k in (1, 5000)]
    assert errors[0] > 0.1 and errors[1] < 0.02


def test_samples_follow_the_model_with_z1_drawn_from_p_z1_given_z2():
    model, _ = linear_gaussian_hvae(a=0.8, c=0.3, s1=0.6)
    w, b = model.decoder.get_layer("dense_out").get_weights()
    z1 = (np.asarray(model.sample(20_000, seed=0)) - b) @ w[0] / (w[0] @ w[0])  # the decoder inverted
    # Ancestrally z1 ~ N(c, a^2 + s1^2) = N(0.3, 1.0); decoding the mean of p(z1|z2) gives N(0.3, a^2 = 0.64).
    assert abs(z1.mean() - 0.3) < 0.03 and abs(z1.var() - 1.0) < 0.05
    np.testing.assert_array_equal(model.sample(5, seed=3), model.sample(5, seed=3))
    assert not np.allclose(model.sample(5, seed=3), model.sample(5, seed=4))


def test_it_trains_reloads_and_serves_top_down(tmp_path):
    x = binary_images(256)
    model = tiny(train_samples=2)
    model.compile()
    before = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
    model.fit(x, batch_size=32, epochs=3, verbose=0)
    assert model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"] < before
    path = tmp_path / "hvae.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is HVAE
    for key in ("beta", "train_samples"):
        assert restored.get_config()[key] == model.get_config()[key]
    assert restored.latent_dim == 2 and restored.z1_dim == 3
    np.testing.assert_array_equal(np.asarray(restored(x[:8])), np.asarray(model(x[:8])))
    z2 = np.random.default_rng(1).normal(size=(4, 2)).astype("float32")
    z1_mean, _ = model.top_decoder(z2)
    np.testing.assert_allclose(np.asarray(restored.decode(z2)),
                               np.asarray(keras.ops.sigmoid(model.decoder(z1_mean))), rtol=1e-5, atol=1e-6)
    served = tf.saved_model.load(str(export_saved_model(restored, tmp_path / "sm", name="m")))
    reconstructed = served.signatures["reconstruct"](images=tf.constant(x[:8]))
    np.testing.assert_allclose(reconstructed["reconstructions"], restored.reconstruct(x[:8]), rtol=1e-5, atol=1e-6)
    assert set(reconstructed) == {"reconstructions", *restored.encode_outputs}
    np.testing.assert_allclose(served.signatures["decode"](z=tf.constant(z2))["images"], restored.decode(z2),
                               rtol=1e-5, atol=1e-6)
    served_samples = served.signatures["sample"](num_samples=tf.constant(4), seed=tf.constant(2))["images"]
    np.testing.assert_allclose(served_samples, restored.sample(4, seed=2), rtol=1e-5, atol=1e-6)


def test_bad_settings_are_one_clear_error():
    with pytest.raises(ValueError, match="train_samples must be >= 1"):
        tiny(train_samples=0)
    with pytest.raises(ValueError, match="top_latent_dim must be >= 1"):
        tiny(top_latent_dim=0)
    with pytest.raises(ValueError, match="free_bits does not apply to HVAE"):
        tiny(free_bits=0.5)
    model = tiny()
    with pytest.raises(ValueError, match="top_encoder must map z1"):
        HVAE(model.encoder, model.decoder, model.top_decoder, model.top_encoder)
