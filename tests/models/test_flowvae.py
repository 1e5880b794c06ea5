"""The flow-posterior VAE (vae_tf.models.flowvae): an IAF with unit gates, and zero flow
steps, are the Gaussian encoder (same log q, loss and importance weights); its KL estimate
is unbiased; it trains, reloads, exports; bad settings are refused."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis import evaluation
from vae_tf.core import priors
from vae_tf.core.layers import reparameterize
from vae_tf.models.flowvae import FlowVAE
from vae_tf.serving.export import export_saved_model

SHAPE = (6,)


def tiny(kind="flowvae", **options):
    return vae_tf.make_model(kind, "mlp", SHAPE, 3, hidden_units=(8,), seed=1, **options)


def binary_data(n=64, seed=0):
    bits = np.random.default_rng(seed).random((n, SHAPE[0] // 2)) > 0.5
    return np.repeat(bits, 2, axis=1).astype("float32")


def copy_networks(source, target):
    """Gives `target` the encoder and decoder weights of `source`, layer by layer."""
    for network in ("encoder", "decoder"):
        for layer in getattr(source, network).layers:
            getattr(target, network).get_layer(layer.name).set_weights(layer.get_weights())


def set_unit_gates(model):
    """Autoregressive networks with zero weights and a scale bias of 100: m = 0, sigma = 1
    in float32, so every step is z_t = z_{t-1} with log-determinant 0."""
    for step in model.flow.flow_steps:
        step.set_weights([np.full(w.shape, 100.0 if w.path.endswith("scale_bias") else 0.0, "float32")
                          for w in step.weights])


@pytest.fixture
def pair():
    vae = tiny("vae")
    flow = tiny(flow="iaf", flow_steps=2, flow_hidden_units=5)
    copy_networks(vae, flow)
    set_unit_gates(flow)
    return vae, flow


def test_an_iaf_with_unit_gates_is_the_gaussian_encoder(pair):
    vae, flow = pair
    x = binary_data()
    codes = flow.encode(x)
    np.testing.assert_array_equal(codes["z_flow"], vae.encode(x)["z_mean"])
    # The same noise stream step after step: identical losses and terms.
    for _ in range(3):
        mine, theirs = flow.compute_terms(x, training=True), vae.compute_terms(x, training=True)
        for name in ("loss", "reconstruction", "kl"):
            np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(flow.per_example_terms(x, seed=4)["neg_elbo"],
                               vae.per_example_terms(x, seed=4)["neg_elbo"], rtol=1e-6)
    # log q(z_T|x) is the Gaussian's, so the importance weights and estimates are the VAE's.
    np.testing.assert_allclose(flow.log_importance_weights(x, codes, num_samples=3, seed=(5, 0)),
                               vae.log_importance_weights(x, vae.encode(x), num_samples=3, seed=(5, 0)),
                               rtol=1e-6)
    np.testing.assert_allclose(evaluation.log_likelihoods(flow, x, num_samples=20, seed=2),
                               evaluation.log_likelihoods(vae, x, num_samples=20, seed=2), rtol=1e-6)


def test_zero_flow_steps_is_the_vae():
    vae, flow = tiny("vae"), tiny(flow="planar", flow_steps=0)
    copy_networks(vae, flow)
    x = binary_data()
    np.testing.assert_allclose(flow.compute_terms(x, training=True)["loss"],
                               vae.compute_terms(x, training=True)["loss"], rtol=1e-6)
    np.testing.assert_allclose(evaluation.log_likelihoods(flow, x, num_samples=5, seed=1),
                               evaluation.log_likelihoods(vae, x, num_samples=5, seed=1), rtol=1e-6)


@pytest.mark.parametrize("flow", ["planar", "iaf"])
def test_the_kl_estimate_is_log_q_minus_log_p_in_expectation(flow):
    """The loss's KL (the Gaussian part exact, the flow's at the draw) has the mean of the
    plain one-draw estimate log q(z_T|x) - log p(z_T), which the importance weights give."""
    model = tiny(flow=flow, flow_steps=3)
    x = np.repeat(binary_data(1), 20000, axis=0)  # one example, 20,000 independent draws
    kl = np.asarray(model.per_example_terms(x, seed=keras.random.SeedGenerator(0))["kl"])
    codes = model.encode(x[:1])
    z = reparameterize(codes["z_mean"], codes["z_log_var"], (3, 0), 20000)
    z_t, log_det = model._push(z, codes["context"])
    plain = np.asarray(priors.gaussian_log_prob(z, codes["z_mean"], codes["z_log_var"]) - log_det
                       - model.prior.log_prob(z_t))[:, 0]
    assert np.std(log_det) > 0.01  # the flow does change the density
    error = 4 * np.hypot(kl.std(), plain.std()) / np.sqrt(len(kl))
    assert abs(kl.mean() - plain.mean()) < error


def test_loss_weighs_the_kl_by_beta():
    model = tiny(flow="planar", flow_steps=2, beta=0.5)
    terms = model.compute_terms(binary_data())
    np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + 0.5 * terms["kl"], rtol=1e-6)


@pytest.mark.parametrize("flow", ["planar", "iaf"])
def test_flow_vae_trains_reloads_and_exports(flow, tmp_path):
    x = binary_data(256)
    model = tiny(flow=flow, flow_steps=2, flow_hidden_units=7) if flow == "iaf" else tiny(flow=flow)
    model.compile()
    before = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
    model.fit(x, batch_size=32, epochs=4, verbose=0)
    assert model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"] < before
    np.testing.assert_array_equal(model.mean_code(x[:5]), model.encode(x[:5])["z_flow"])
    path = tmp_path / "flow.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is FlowVAE
    assert {k: restored.get_config()[k] for k in ("flow", "flow_steps", "flow_hidden_units")} == \
        {k: model.get_config()[k] for k in ("flow", "flow_steps", "flow_hidden_units")}
    np.testing.assert_array_equal(restored(x[:8]), model(x[:8]))
    np.testing.assert_array_equal(restored.sample(4, seed=2), model.sample(4, seed=2))
    log_p = evaluation.log_likelihoods(restored, x[:32], num_samples=20)
    assert np.all(np.isfinite(log_p)) and -log_p.mean() < evaluation.elbo(restored, x[:32])["neg_elbo"] + 0.5
    served = tf.saved_model.load(str(export_saved_model(restored, tmp_path / "sm", name="m")))
    assert {"encode", "decode", "sample", "score", "reconstruct"} <= set(served.signatures)
    codes = served.signatures["encode"](features=tf.constant(x[:3]))
    np.testing.assert_allclose(codes["z_flow"], restored.encode(x[:3])["z_flow"], rtol=1e-5, atol=1e-6)


def test_bad_settings_are_refused_naming_the_option():
    with pytest.raises(ValueError, match="flow must be one of"):
        tiny(flow="maf")
    with pytest.raises(ValueError, match="flow_steps must be >= 0"):
        tiny(flow_steps=-1)
    with pytest.raises(ValueError, match="flow_hidden_units applies only to flow 'iaf'"):
        tiny(flow="planar", flow_hidden_units=16)
    with pytest.raises(ValueError, match="free_bits does not apply to FlowVAE"):
        tiny(free_bits=0.5)
    encoder = vae_tf.build_mlp_encoder(SHAPE, 3, (8,))
    with pytest.raises(ValueError, match="must output .z_mean, z_log_var, z, context."):
        FlowVAE(encoder, vae_tf.build_mlp_decoder(SHAPE, 3, (8,)))
