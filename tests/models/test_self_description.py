"""What every registered family answers about itself, so that analysis, serving and
training never ask which class a model is: its latent means, the anomaly scores it
supports (and which a graph computes), its held-out metrics and training callbacks."""

import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis import anomaly, evaluation
from vae_tf.models import registry
from vae_tf.serving.export import export_saved_model

SHAPE = (8, 8, 1)


def build(kind):
    num_classes = 3 if registry.get(kind).conditional else None
    try:
        return vae_tf.make_model(kind, "mlp", SHAPE, 2, num_classes=num_classes, hidden_units=(8,), seed=1)
    except ValueError:  # a family whose codes form a grid is convolutional
        return vae_tf.make_model(kind, "conv", SHAPE, 2, num_classes=num_classes, filters=(4, 4), seed=1)


def data(model, n=6):
    images = np.random.default_rng(0).random((n, *SHAPE)).astype("float32")
    labels = np.arange(n, dtype="int32") % 3 if model.is_conditional else None
    return images, labels


@pytest.mark.parametrize("kind", registry.names())
def test_mean_code_is_one_vector_per_example_and_the_features_of_a_dataset(kind):
    model = build(kind)
    images, labels = data(model)
    means = np.asarray(model.mean_code(images, labels))
    assert means.ndim == 2 and len(means) == 6 and means.dtype == np.float32
    encoded = model.encode(images, labels)
    expected = (np.asarray(encoded["z_e"]).mean(axis=(1, 2)) if "z_e" in encoded
                else np.asarray(encoded[model.code_name]))
    np.testing.assert_allclose(means, expected, rtol=1e-5, atol=1e-6)
    dataset = tf.data.Dataset.from_tensor_slices(
        images if labels is None else (images, labels)).batch(4)
    features, got_labels, inputs = evaluation.latent_features(model, dataset, max_examples=5, return_inputs=True)
    np.testing.assert_allclose(features, means[:5], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(inputs, images[:5])
    assert (got_labels is None) == (labels is None)
    spread = model.code_log_var(images, labels)
    assert (spread is None) == (not model.is_variational)


@pytest.mark.parametrize("kind", registry.names())
def test_the_anomaly_scores_a_model_supports_are_the_ones_computed(kind):
    model = build(kind)
    images, labels = data(model)
    supported = model.anomaly_scores
    assert set(supported) <= set(anomaly.METHODS) and "reconstruction" in supported
    assert list(supported) == [m for m in anomaly.METHODS if m in supported]
    scores = anomaly.score(model, images, labels=labels, iw_samples=2, regret_steps=1)
    assert list(scores) == list(supported)
    np.testing.assert_allclose(scores["reconstruction"], anomaly.reconstruction_nll(model, images, labels), rtol=1e-5)
    assert model.default_anomaly_score in model.exportable_scores
    assert set(model.exportable_scores) <= set(supported)
    for method in model.exportable_scores:
        graph = anomaly.score_graph(model, {"score": method, "options": {"regret_steps": 1}})
        got = np.asarray(graph(tf.constant(images), None if labels is None else tf.constant(labels)))
        np.testing.assert_allclose(got, scores[method], rtol=1e-4, atol=1e-4)
    for method in set(anomaly.METHODS) - set(supported):
        with pytest.raises(ValueError, match="this model supports"):
            anomaly.score(model, images, [method], labels=labels)


@pytest.mark.parametrize("kind", registry.names())
def test_held_out_metrics_and_training_callbacks_follow_the_model(kind):
    model = build(kind)
    images, labels = data(model)
    dataset = tf.data.Dataset.from_tensor_slices(
        images if labels is None else (images, labels)).batch(4)
    metrics = evaluation.held_out_metrics(model, dataset, iw_samples=2)
    expected = {"examples"}
    if "elbo" in model.held_out_metrics:
        expected |= {"neg_elbo", "reconstruction", "kl"}
    if "iw_log_likelihood" in model.held_out_metrics:
        expected |= {"iw_log_likelihood", "iw_samples"}
    if "reconstruction" in model.held_out_metrics:
        expected |= {"reconstruction"}
    assert set(metrics) == expected and metrics["examples"] == 6
    callbacks = model.training_callbacks(beta=0.5, kl_warmup_epochs=2)
    assert bool(callbacks) == model.is_variational  # the KL weight schedule
    if callbacks:
        model.compile()
        model.fit(images, labels, epochs=1, verbose=0, callbacks=callbacks)
        assert float(model.beta.numpy()) == 0.0  # epoch 0 of a 2-epoch warm-up


@pytest.mark.parametrize("kind", registry.names())
def test_every_family_exports_the_signatures_it_says_it_serves(kind, tmp_path):
    model = build(kind)
    images, labels = data(model)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path, name=kind)))
    assert set(model.export_signatures()) <= set(served.signatures)
    label_args = {} if labels is None else {"labels": tf.constant(labels)}
    encoded = served.signatures["encode"](images=tf.constant(images), **label_args)
    expected = model.encode(images, labels) if model.is_conditional else model.encode(images)
    assert set(encoded) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(encoded[name].numpy(), np.asarray(value), rtol=1e-5, atol=1e-5)
