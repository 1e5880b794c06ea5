import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.serving.export import export_saved_model
from vae_tf.models.vqvae.pixelcnn import PixelCNNPrior
from vae_tf.models.vqvae.networks import build_vq_decoder, build_vq_encoder
from vae_tf.models.vqvae.prior import encode_dataset, fit_prior, make_prior
from vae_tf.models.vqvae.model import VQVAE, make_vqvae

SHAPE = (28, 28, 1)


def _small(**kwargs):
    return make_vqvae(SHAPE, num_embeddings=16, embedding_dim=4, filters=(8, 16), seed=0, **kwargs)


def _small_prior(model, num_classes=None):
    return make_prior(model, num_classes=num_classes, filters=8, num_layers=1, first_kernel_size=3)


@pytest.mark.parametrize("shape, filters, grid", [
    ((28, 28, 1), (8, 16), (7, 7)),
    ((30, 45, 3), (8, 8, 8), (4, 6)),
    ((250, 250, 3), (4, 4, 4, 4), (16, 16)),
])
def test_shapes_follow_the_strides(shape, filters, grid):
    model = make_vqvae(shape, num_embeddings=8, embedding_dim=3, filters=filters)
    assert model.grid_shape == grid
    x = np.random.rand(2, *shape).astype("float32")
    encoded = model.encode(x)
    assert encoded["codes"].shape == (2, *grid) and encoded["codes"].dtype == tf.int32
    assert encoded["z_e"].shape == (2, *grid, 3)
    assert model.reconstruct(x).shape == (2, *shape)
    assert not model.is_variational and not model.is_conditional


def test_reconstruction_term_is_the_likelihood_of_the_decoded_codes(real_batch):
    model = _small()
    x = real_batch[0][:16]
    terms = model.per_example_terms(x)
    codes = model.encode(x)["codes"]
    logits = model.decoder(model.quantizer.lookup(codes))
    expected = model.likelihood.negative_log_likelihood(x, logits)
    np.testing.assert_allclose(terms["reconstruction"], expected, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + terms["vq"], rtol=1e-6)
    assert terms["loss"].shape == (16,)


@pytest.mark.parametrize("ema", [False, True])
def test_training_lowers_the_loss_and_reports_codebook_metrics(real_batch, ema):
    model = _small(ema=ema, restart_after=5)
    x = real_batch[0]
    model.compile()
    before = model.evaluate(x, batch_size=128, verbose=0, return_dict=True)
    model.fit(x, epochs=3, batch_size=64, verbose=0)
    after = model.evaluate(x, batch_size=128, verbose=0, return_dict=True)
    assert set(after) == {"loss", "reconstruction", "vq", "perplexity", "codebook_usage"}
    assert after["reconstruction"] < before["reconstruction"] - 20
    assert 1.0 <= after["perplexity"] <= 16.0
    # Dead-code restarts keep most of the codebook in use.
    assert after["codebook_usage"] >= 0.5


def test_round_trip_with_a_prior(tmp_path):
    model = _small(ema=True)
    model.compile()
    model.fit(np.random.rand(32, *SHAPE).astype("float32"), epochs=1, verbose=0)
    model.attach_prior(_small_prior(model, num_classes=3))
    path = tmp_path / "vqvae.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = np.random.rand(4, *SHAPE).astype("float32")
    np.testing.assert_array_equal(restored.encode(x)["codes"], model.encode(x)["codes"])
    np.testing.assert_allclose(restored.reconstruct(x), model.reconstruct(x), atol=1e-6)
    np.testing.assert_allclose(
        restored.sample(3, seed=5, labels=1), model.sample(3, seed=5, labels=1), atol=1e-6
    )
    assert restored.get_config()["quantizer"] == model.get_config()["quantizer"]


def test_sampling_is_reproducible_and_reports_progress():
    model = _small()
    model.attach_prior(_small_prior(model))
    steps = []
    a = model.sample(4, seed=3, progress=lambda done, total: steps.append((done, total)))
    np.testing.assert_array_equal(a, model.sample(4, seed=3))
    assert not np.array_equal(a, model.sample(4, seed=4))
    assert a.shape == (4, *SHAPE)
    assert steps[-1] == (49, 49) and len(steps) == 49


def test_encode_dataset_gives_codes_and_labels(real_batch):
    model = _small()
    x, y = real_batch
    dataset = tf.data.Dataset.from_tensor_slices((x[:40], y[:40])).batch(16)
    codes, labels = zip(*encode_dataset(model, dataset))
    np.testing.assert_array_equal(np.concatenate(codes), model.encode(x[:40])["codes"])
    np.testing.assert_array_equal(np.concatenate(labels), y[:40])


def test_the_prior_sees_the_cached_grids_in_a_new_order_every_epoch(real_batch, monkeypatch):
    model = _small()
    x, y = real_batch
    dataset = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(8)
    seen = []

    def fit(prior, data, epochs, shuffle, **kwargs):
        assert shuffle is False  # dealt by the dataset, not by Keras
        seen.extend([np.concatenate(list(data)) for _ in range(epochs)])

    monkeypatch.setattr(PixelCNNPrior, "fit", fit)
    fit_prior(model, dataset, dataset, epochs=3, seed=0, filters=8, num_layers=1)

    order = [tuple(map(bytes, epoch)) for epoch in seen]
    assert len(set(order)) == 3  # three different orders ...
    grids = sorted(map(bytes, np.asarray(model.encode(x[:64])["codes"])))
    assert all(sorted(o) == grids for o in order)  # ... of the training images' grids


def test_exported_signatures_reload_without_vae_tf(tmp_path):
    model = _small()
    model.attach_prior(_small_prior(model))
    path = export_saved_model(model, tmp_path, name="vq")

    served = tf.saved_model.load(str(path))
    assert set(served.signatures) == {
        "serving_default", "encode", "decode", "reconstruct", "score", "sample"
    }
    x = np.random.rand(3, *SHAPE).astype("float32")
    np.testing.assert_allclose(
        served.score(tf.constant(x))["neg_elbo"],
        model.per_example_terms(x)["reconstruction"], rtol=1e-5,
    )
    codes = served.encode(tf.constant(x))["codes"]
    np.testing.assert_array_equal(codes, model.encode(x)["codes"])
    np.testing.assert_allclose(served.decode(codes)["images"], model.decode(codes), atol=1e-6)
    np.testing.assert_allclose(
        served.reconstruct(tf.constant(x))["reconstructions"], model.reconstruct(x), atol=1e-6
    )
    first = served.sample(tf.constant(4), tf.constant(11))["images"]
    np.testing.assert_array_equal(first, served.sample(tf.constant(4), tf.constant(11))["images"])
    np.testing.assert_allclose(first, model.sample(4, seed=11), atol=1e-6)

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must lie in \[0, 16\)"):
        served.decode(tf.fill([1, 7, 7], 16))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must lie in \[0, 16\)"):
        served.decode(tf.fill([1, 7, 7], -1))
    with pytest.raises((ValueError, TypeError)):
        served.decode(tf.zeros([1, 6, 7], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must have shape \(batch, 7, 7\)"):
        served.signatures["decode"](codes=tf.zeros([1, 6, 7], tf.int32))  # what TF Serving calls
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be >= 1"):
        served.sample(tf.constant(0), tf.constant(1))


def test_bad_inputs_get_clear_errors():
    model = _small()
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\), got values from 0 to 16"):
        model.decode(np.array([[[0] * 7] * 6 + [[16] * 7]]))
    with pytest.raises(ValueError, match=r"codes have shape \(2, 7, 6\)"):
        model.decode(np.zeros((2, 7, 6), "int32"))
    with pytest.raises(ValueError, match="codes must be integers"):
        model.decode(np.zeros((2, 7, 7), "float32"))
    with pytest.raises(ValueError, match=r"images have shape \(28, 28, 3\)"):
        model.encode(np.zeros((1, 28, 28, 3), "float32"))
    with pytest.raises(ValueError, match="sample needs a prior"):
        model.sample(2)
    with pytest.raises(ValueError, match="prior models 16 codes on a"):
        model.attach_prior(PixelCNNPrior(16, (6, 6), filters=4, num_layers=0))
    with pytest.raises(ValueError, match="embedding_dim"):
        build_vq_encoder(SHAPE, 0)
    with pytest.raises(ValueError, match="image shape"):
        build_vq_decoder((28, 28), 4)
    encoder = build_vq_encoder(SHAPE, 4, (8, 16))
    with pytest.raises(ValueError, match="decoder input has shape"):
        VQVAE(encoder, build_vq_decoder(SHAPE, 4, (8,)), model.quantizer)


def test_default_compile_uses_fused_adam_and_moves_the_codebook_by_gradients(real_batch):
    """The codebook's gradient is sparse (IndexedSlices, from the lookup); FusedAdam hands
    it to Keras's Adam, so only the chosen codes move."""
    from vae_tf.core.optimizers import FusedAdam

    model = _small(restart_after=0)
    model.compile()
    assert isinstance(model.optimizer, FusedAdam)
    x = real_batch[0][:64]
    before = model.quantizer.codebook.numpy()
    used = np.unique(model.encode(x)["codes"])
    model.fit(x, epochs=1, batch_size=64, verbose=0)
    moved = np.any(before != model.quantizer.codebook.numpy(), axis=-1)
    assert moved.any() and set(np.flatnonzero(moved)) <= set(used)


def test_reconstruction_and_complexity_scores_of_a_vqvae(real_batch):
    from vae_tf.analysis import anomaly

    model = _small()
    x = real_batch[0][:16]
    expected = model.per_example_terms(x)["reconstruction"].numpy()
    scores = anomaly.score(model, x, methods=["reconstruction", "complexity"])
    np.testing.assert_allclose(scores["reconstruction"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        scores["complexity"], expected - anomaly.png_nats(x).numpy(), rtol=1e-5)
    graph = anomaly.score_graph(model, {"score": "reconstruction"})
    np.testing.assert_allclose(graph(x, None).numpy(), expected, rtol=1e-5)
