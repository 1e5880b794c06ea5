import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.models.vqvae.quantizer import VectorQuantizer, codebook_statistics


def _numpy_nearest(z, codebook):
    flat = z.reshape(-1, codebook.shape[1])
    distances = ((flat[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return distances.argmin(1).reshape(z.shape[:-1])


def test_picks_the_nearest_code_like_numpy():
    vq = VectorQuantizer(32, 5, seed=1)
    z = np.random.randn(4, 6, 7, 5).astype("float32")
    out = vq(z)
    expected = _numpy_nearest(z, vq.codebook.numpy())
    np.testing.assert_array_equal(out["codes"].numpy(), expected)
    np.testing.assert_allclose(out["quantized"].numpy(), vq.codebook.numpy()[expected], atol=1e-6)
    assert out["codes"].dtype == tf.int32


def test_losses_follow_equation_3_and_are_added():
    vq = VectorQuantizer(8, 3, beta=0.25, seed=2)
    z = np.random.randn(5, 4, 4, 3).astype("float32")
    out = vq(z)
    e = vq.codebook.numpy()[_numpy_nearest(z, vq.codebook.numpy())]
    squared = ((z - e) ** 2).reshape(5, -1).sum(1)
    # codebook term + beta * commitment: equal in value, different in gradient.
    np.testing.assert_allclose(out["vq_loss"].numpy(), 1.25 * squared, rtol=1e-5)
    assert len(vq.losses) == 1
    np.testing.assert_allclose(vq.losses[0].numpy(), 1.25 * squared.mean(), rtol=1e-5)


def test_ema_loss_is_the_commitment_term_alone():
    vq = VectorQuantizer(8, 3, beta=0.5, ema=True, seed=2)
    z = np.random.randn(5, 4, 4, 3).astype("float32")
    e = vq.codebook.numpy()[_numpy_nearest(z, vq.codebook.numpy())]
    np.testing.assert_allclose(
        vq(z)["vq_loss"].numpy(), 0.5 * ((z - e) ** 2).reshape(5, -1).sum(1), rtol=1e-5
    )


def test_straight_through_gradient_reaches_the_encoder_and_codebook():
    images = keras.Input((8, 8, 1))
    z_e = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="enc")(images)
    encoder = keras.Model(images, z_e)
    vq = VectorQuantizer(16, 4, seed=0)
    x = np.random.rand(3, 8, 8, 1).astype("float32")
    with tf.GradientTape(persistent=True) as tape:
        out = vq(encoder(x))
        downstream = tf.reduce_sum(out["quantized"] ** 2)
        vq_loss = tf.reduce_mean(out["vq_loss"])
    encoder_grads = tape.gradient(downstream, encoder.trainable_weights)
    assert all(g is not None and np.abs(g.numpy()).sum() > 0 for g in encoder_grads)
    # The decoder-side loss does not move the codebook; the codebook term does.
    assert tape.gradient(downstream, vq.codebook) is None
    assert np.abs(tf.convert_to_tensor(tape.gradient(vq_loss, vq.codebook))).sum() > 0


def test_ema_update_matches_its_formula():
    num, dim, decay, eps = 4, 2, 0.9, 1e-3
    vq = VectorQuantizer(num, dim, ema=True, decay=decay, epsilon=eps, restart_after=0, seed=3)
    vq.codebook.assign(np.array([[0, 0], [1, 0], [0, 1], [5, 5]], "float32"))
    sizes = np.array([2.0, 1.0, 0.5, 3.0], "float32")
    vq.ema_cluster_size.assign(sizes)
    vq.ema_sum.assign(vq.codebook.numpy() * sizes[:, None])  # consistent: e_k = m_k / N_k
    z = np.array([[[0.1, 0.0], [0.9, 0.1], [1.1, -0.1]], [[0.0, 1.2], [0.2, -0.1], [0.0, 0.8]]],
                 "float32")
    codes = _numpy_nearest(z, vq.codebook.numpy()).ravel()
    np.testing.assert_array_equal(codes, [0, 1, 1, 2, 0, 2])
    one_hot = np.eye(num)[codes]
    n_old, m_old = vq.ema_cluster_size.numpy(), vq.ema_sum.numpy()
    n_new = decay * n_old + (1 - decay) * one_hot.sum(0)
    m_new = decay * m_old + (1 - decay) * one_hot.T @ z.reshape(-1, dim)
    total = n_new.sum()
    smoothed = (n_new + eps) / (total + num * eps) * total

    vq(z, training=True)
    np.testing.assert_allclose(vq.ema_cluster_size.numpy(), n_new, rtol=1e-6)
    np.testing.assert_allclose(vq.ema_sum.numpy(), m_new, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(vq.codebook.numpy(), m_new / smoothed[:, None], rtol=1e-5, atol=1e-7)
    # Code 3 was unused: decayed sum over decayed size, i.e. nearly where it was.
    np.testing.assert_allclose(vq.codebook.numpy()[3], [5, 5], rtol=2e-3)


def test_not_training_leaves_the_codebook_alone():
    vq = VectorQuantizer(4, 2, ema=True, restart_after=1, seed=0)
    before = vq.codebook.numpy().copy()
    vq(np.random.randn(6, 2).astype("float32"), training=False)
    np.testing.assert_array_equal(vq.codebook.numpy(), before)


def test_dead_codes_restart_from_encoder_outputs():
    vq = VectorQuantizer(6, 2, restart_after=2, seed=4)
    vq.codebook.assign(np.array([[0, 0], [9, 9], [-9, 9], [9, -9], [-9, -9], [20, 20]], "float32"))
    z = np.random.uniform(-0.5, 0.5, (10, 2)).astype("float32")  # all nearest to code 0
    vq(z, training=True)
    np.testing.assert_array_equal(vq.unused_steps.numpy(), [0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(vq.codebook.numpy()[5], [20, 20])  # not yet restarted
    vq(z, training=True)
    restarted = vq.codebook.numpy()[1:]
    for vector in restarted:  # every dead code now sits on one of the batch's vectors
        assert np.abs(z - vector).sum(1).min() < 1e-6
    np.testing.assert_array_equal(vq.unused_steps.numpy(), np.zeros(6))


def test_codebook_statistics():
    uniform = codebook_statistics(np.arange(8).repeat(3), 8)
    np.testing.assert_allclose(uniform["perplexity"], 8.0, rtol=1e-5)
    np.testing.assert_allclose(uniform["codebook_usage"], 1.0)
    single = codebook_statistics(np.full((4, 3), 2), 8)
    np.testing.assert_allclose(single["perplexity"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(single["codebook_usage"], 1 / 8)
    half = codebook_statistics(np.array([0, 0, 1, 1]), 4)
    np.testing.assert_allclose(half["perplexity"], math.exp(math.log(2)), rtol=1e-6)


def test_round_trip_in_a_functional_model(tmp_path):
    inputs = keras.Input((5, 5, 3))
    vq = VectorQuantizer(16, 3, beta=0.3, ema=True, decay=0.95, restart_after=7, seed=5)
    model = keras.Model(inputs, vq(inputs)["codes"])
    vq(np.random.randn(8, 5, 5, 3).astype("float32"), training=True)  # move the EMA state
    path = tmp_path / "vq.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = np.random.randn(4, 5, 5, 3).astype("float32")
    np.testing.assert_array_equal(restored(x), model(x))
    layer = restored.layers[-1]
    assert layer.get_config() == vq.get_config()
    np.testing.assert_array_equal(layer.ema_cluster_size.numpy(), vq.ema_cluster_size.numpy())


@pytest.mark.parametrize("kwargs, message", [
    ({"num_embeddings": 1}, "num_embeddings"),
    ({"embedding_dim": 0}, "embedding_dim"),
    ({"beta": -1.0}, "beta"),
    ({"decay": 1.0}, "decay"),
    ({"epsilon": 0.0}, "epsilon"),
    ({"restart_after": -1}, "restart_after"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VectorQuantizer(**{"num_embeddings": 8, "embedding_dim": 2, **kwargs})


def test_the_layer_is_public_at_the_top_level():
    import vae_tf
    from vae_tf.models.vqvae.quantizer import VectorQuantizer

    assert vae_tf.VectorQuantizer is VectorQuantizer and "VectorQuantizer" in vae_tf.__all__
