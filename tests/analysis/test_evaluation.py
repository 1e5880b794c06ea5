import math

import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis import evaluation


@pytest.fixture(scope="module")
def trained_vae(real_images):
    x = (real_images[0][:2048] > 0.5).astype("float32")
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 8, hidden_units=(128,), seed=0)
    model.compile()
    model.fit(x, epochs=3, batch_size=128, verbose=0)
    return model, x[:256]


def test_importance_weighted_bound_is_above_the_elbo_and_grows_with_k(trained_vae):
    model, x = trained_vae
    neg_elbo = evaluation.elbo(model, x)["neg_elbo"]
    estimates = [evaluation.importance_weighted_log_likelihood(model, x, num_samples=k)
                 for k in (1, 5, 50, 500)]
    assert estimates[0] == pytest.approx(-neg_elbo, abs=1.0)  # K = 1 is the ELBO
    assert all(b > a for a, b in zip(estimates, estimates[1:]))
    assert estimates[-1] > -neg_elbo


def test_elbo_terms_add_up_and_ignore_the_training_beta(trained_vae):
    model, x = trained_vae
    terms = evaluation.elbo(model, x)
    assert terms["neg_elbo"] == pytest.approx(terms["reconstruction"] + terms["kl"])
    model.beta.assign(5.0)
    try:
        assert evaluation.elbo(model, x)["kl"] == pytest.approx(terms["kl"], rel=1e-6)
    finally:
        model.beta.assign(1.0)


def set_encoder_to_posterior(model, sigma, variance_scale):
    """Sets the linear encoder to the exact posterior of the linear-Gaussian model,
    its variance multiplied by `variance_scale`; returns (exact log p(x) function)."""
    kernel, bias = (np.asarray(w, "float64") for w in model.decoder.get_layer("dense_out").weights)
    w = kernel[0]  # x = z * w + bias + noise
    posterior_var = 1.0 / (1.0 + w @ w / sigma**2)
    gain = posterior_var * w / sigma**2  # z_mean = gain . (x - bias)
    model.encoder.get_layer("z_mean").set_weights([gain[:, None], np.array([-gain @ bias])])
    model.encoder.get_layer("z_log_var").set_weights(
        [np.zeros((3, 1)), np.array([math.log(variance_scale * posterior_var)])])
    covariance = np.outer(w, w) + sigma**2 * np.eye(3)

    def exact(x):
        centred = x - bias
        return -0.5 * (
            np.einsum("ni,ij,nj->n", centred, np.linalg.inv(covariance), centred)
            + np.log(np.linalg.det(covariance)) + 3 * math.log(2 * math.pi)
        )

    return exact


def test_exact_posterior_makes_the_bound_tight(linear_gaussian_vae):
    model = linear_gaussian_vae(sigma=0.5)
    exact = set_encoder_to_posterior(model, 0.5, variance_scale=1.0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    np.testing.assert_allclose(evaluation.log_likelihoods(model, x, num_samples=1), exact(x), atol=1e-3)


def test_importance_weighted_estimate_converges_to_the_exact_marginal(linear_gaussian_vae):
    model = linear_gaussian_vae(sigma=0.5)
    exact = set_encoder_to_posterior(model, 0.5, variance_scale=3.0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    errors = [np.abs(evaluation.log_likelihoods(model, x, num_samples=k) - exact(x)).mean()
              for k in (1, 10000)]
    assert errors[0] > 0.1  # one sample from a too-broad proposal is a loose bound
    assert errors[1] < 0.01


def test_chunking_does_not_change_the_estimate(linear_gaussian_vae):
    model = linear_gaussian_vae()
    x = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    whole = evaluation.log_likelihoods(model, x, num_samples=64, seed=3, max_decoded=10_000)
    assert whole.shape == (4,)
    chunked = evaluation.log_likelihoods(model, x, num_samples=64, seed=3, max_decoded=8)
    assert np.all(np.isfinite(chunked))
    np.testing.assert_allclose(chunked, whole, atol=0.5)  # different draws, same quantity


def test_anomaly_scores_rank_noise_above_real_images(trained_vae, real_images):
    model, x = trained_vae
    noise = (np.random.default_rng(0).uniform(size=(32, 28, 28, 1)) > 0.5).astype("float32")
    scores = evaluation.anomaly_scores(model, np.concatenate([x[:32], noise]), num_samples=10)
    assert scores.shape == (64,)
    assert scores[32:].min() > scores[:32].max()

    ae = vae_tf.make_model("ae", "mlp", (28, 28, 1), 4, hidden_units=(32,))
    assert evaluation.anomaly_scores(ae, x[:10]).shape == (10,)


def test_latent_features_and_labels(real_images):
    images, labels = real_images[0][:300], real_images[1][:300]
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(128)
    cvae = vae_tf.make_model("cvae", "mlp", (28, 28, 1), 3, num_classes=10, hidden_units=(16,))
    features, got_labels = evaluation.latent_features(cvae, dataset)
    assert features.shape == (300, 3)
    np.testing.assert_array_equal(got_labels, labels)
    with pytest.raises(ValueError, match="CVAE"):
        evaluation.latent_features(cvae, images)
    ae_features, none = evaluation.latent_features(
        vae_tf.make_model("ae", "mlp", (28, 28, 1), 5, hidden_units=(16,)), images)
    assert ae_features.shape == (300, 5) and none is None


def test_bad_arguments(linear_gaussian_vae):
    ae = vae_tf.make_model("ae", "mlp", (4,), 2, hidden_units=(4,))
    with pytest.raises(ValueError, match="AE"):
        evaluation.elbo(ae, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="num_samples"):
        evaluation.log_likelihoods(linear_gaussian_vae(), np.zeros((2, 3)), num_samples=0)


def linear_gaussian_flow_vae(flow, sigma=0.5):
    """The linear-Gaussian model of `linear_gaussian_vae` with one flow step after its
    encoder (the context h is x itself: the encoder has no hidden layer)."""
    from vae_tf.models.flowvae import FlowVAE, with_context

    encoder = with_context(vae_tf.build_mlp_encoder((3,), 1, hidden_units=()))
    decoder = vae_tf.build_mlp_decoder((3,), 1, hidden_units=())
    return FlowVAE(encoder, decoder, likelihood=vae_tf.core.likelihoods.Gaussian(sigma=sigma), flow=flow,
                   flow_steps=1, flow_hidden_units=2)


def test_an_iaf_onto_the_exact_posterior_makes_the_bound_tight():
    """With one latent variable an IAF step with constant m and s is z_1 = g z_0 + (1 - g) m,
    g = sigmoid(s). A base Gaussian N((mu - (1 - g) m) / g, v / g^2) becomes the exact
    posterior N(mu, v), so every importance weight is p(x), but only with the step's
    log-determinant log g counted (here log 0.5)."""
    model = linear_gaussian_flow_vae("iaf")
    exact = set_encoder_to_posterior(model, 0.5, variance_scale=1.0)
    gate, shift = 0.5, 0.7  # s = 0
    [step] = model.flow.flow_steps
    step.set_weights([np.full(w.shape, shift if w.path.endswith("shift_bias") else 0.0, "float32")
                      for w in step.weights])
    mean_layer, log_var_layer = model.encoder.get_layer("z_mean"), model.encoder.get_layer("z_log_var")
    kernel, bias = mean_layer.get_weights()
    mean_layer.set_weights([kernel / gate, (bias - (1 - gate) * shift) / gate])
    kernel, bias = log_var_layer.get_weights()
    log_var_layer.set_weights([kernel, bias - 2 * math.log(gate)])
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    np.testing.assert_allclose(evaluation.log_likelihoods(model, x, num_samples=1), exact(x), atol=1e-3)


def test_importance_weighted_estimate_with_a_planar_flow_converges_to_the_exact_marginal():
    """A planar step makes the proposal non-Gaussian; the estimate still converges to log p(x)
    when log q(z_T|x) counts its log-determinant."""
    model = linear_gaussian_flow_vae("planar")
    exact = set_encoder_to_posterior(model, 0.5, variance_scale=2.0)
    [step] = model.flow.flow_steps
    step.set_weights([np.zeros((3, 3), "float32"), np.array([0.8, 1.5, 0.3], "float32")])  # u, w, b
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    errors = [np.abs(evaluation.log_likelihoods(model, x, num_samples=k) - exact(x)).mean()
              for k in (1, 10000)]
    assert errors[0] > 0.1
    assert errors[1] < 0.01
