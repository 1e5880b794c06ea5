import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.core.layers import LOG_VAR_RANGE, OneHot, Sampling, gaussian_kl


def closed_form_kl(mean, log_var):
    return 0.5 * np.sum(mean**2 + np.exp(log_var) - 1.0 - log_var, axis=-1)


def test_kl_is_zero_for_the_standard_normal():
    layer = Sampling()
    layer([np.zeros((4, 3), "float32"), np.zeros((4, 3), "float32")])
    assert float(layer.losses[0]) == pytest.approx(0.0, abs=1e-7)


def test_kl_matches_closed_form_summed_over_dims_and_averaged_over_batch():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(5, 4)).astype("float32")
    log_var = rng.normal(size=(5, 4)).astype("float32")
    layer = Sampling()
    layer([mean, log_var])
    expected = closed_form_kl(mean, log_var).mean()
    assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-5)
    # Known value: mean 1, variance e -> 0.5 * (1 + e - 1 - 1) per dimension.
    layer([np.ones((1, 2), "float32"), np.ones((1, 2), "float32")])
    assert float(layer.losses[0]) == pytest.approx(2 * 0.5 * (np.e - 1.0), rel=1e-6)


def test_kl_is_weighted_by_beta_variable():
    layer = Sampling(beta=0.25)
    mean = np.ones((2, 3), "float32")
    layer([mean, np.zeros_like(mean)])
    assert float(layer.losses[0]) == pytest.approx(0.25 * 1.5, rel=1e-6)
    layer.beta.assign(2.0)
    layer([mean, np.zeros_like(mean)])
    assert float(layer.losses[0]) == pytest.approx(2.0 * 1.5, rel=1e-6)
    assert not layer.beta.trainable


def test_free_bits_floor_each_dimension():
    layer = Sampling(free_bits=0.5)
    # Dimension 0 has KL 2.0, dimension 1 has KL 0 -> floored to 0.5.
    layer([np.array([[2.0, 0.0]], "float32"), np.zeros((1, 2), "float32")])
    assert float(layer.losses[0]) == pytest.approx(2.5, rel=1e-6)


def test_samples_have_the_posterior_mean_and_variance():
    n = 20000
    mean = np.tile(np.array([[1.5, -2.0]], "float32"), (n, 1))
    log_var = np.tile(np.log(np.array([[0.25, 4.0]], "float32")), (n, 1))
    z = np.asarray(Sampling(seed=3)([mean, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0], atol=0.05)
    np.testing.assert_allclose(z.var(axis=0), [0.25, 4.0], rtol=0.05)


def test_extreme_log_var_is_clamped_and_stays_finite():
    layer = Sampling()
    z = layer([np.zeros((2, 2), "float32"), np.array([[1e4, -1e4]] * 2, "float32")])
    assert np.all(np.isfinite(np.asarray(z)))
    assert np.isfinite(float(layer.losses[0]))
    clamped = gaussian_kl(np.zeros(1, "float32"), np.array([1e4], "float32"))
    expected = 0.5 * (np.exp(LOG_VAR_RANGE[1]) - 1.0 - LOG_VAR_RANGE[1])
    assert float(clamped[0]) == pytest.approx(expected, rel=1e-5)


def test_sampling_config_round_trip():
    layer = Sampling(beta=0.5, free_bits=0.1, seed=7, name="s")
    clone = Sampling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert float(clone.beta) == 0.5


@pytest.mark.parametrize("kwargs, word", [({"beta": -1.0}, "beta"), ({"free_bits": -0.1}, "free_bits")])
def test_sampling_rejects_negative_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Sampling(**kwargs)


def test_one_hot_encodes_and_rejects_out_of_range_labels():
    layer = OneHot(3)
    np.testing.assert_array_equal(np.asarray(layer(np.array([0, 2]))), [[1, 0, 0], [0, 0, 1]])
    for bad in ([3], [-1]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 3\)"):
            layer(np.array(bad))
    with pytest.raises(ValueError, match="num_classes"):
        OneHot(1)
    assert OneHot.from_config(layer.get_config()).num_classes == 3


def test_one_hot_rejects_out_of_range_labels_inside_a_graph():
    layer = OneHot(3)
    traced = tf.function(lambda labels: layer(labels))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class ids"):
        traced(tf.constant([5]))


def test_layers_are_registered_serializable():
    for layer in (Sampling(), OneHot(4)):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(restored) is type(layer)
