import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.analysis.samplers import GaussianMixtureSampler

WEIGHTS = np.array([0.3, 0.7])
MEANS = np.array([[-3.0, 0.0], [3.0, 1.0]])
COVARIANCES = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 2.0]]])


def known_mixture_draws(n=6000, seed=0):
    return GaussianMixtureSampler(WEIGHTS, MEANS, COVARIANCES).sample_numpy(n, seed=seed)


def test_fit_recovers_a_known_two_component_mixture():
    fitted = GaussianMixtureSampler.fit(known_mixture_draws(), num_components=2, seed=0)
    order = np.argsort(fitted.means[:, 0])
    np.testing.assert_allclose(fitted.weights[order], WEIGHTS, atol=0.02)
    np.testing.assert_allclose(fitted.means[order], MEANS, atol=0.1)
    np.testing.assert_allclose(fitted.covariances[order], COVARIANCES, atol=0.15)


def test_numpy_and_tensorflow_draws_repeat_by_seed_and_follow_the_mixture():
    sampler = GaussianMixtureSampler(WEIGHTS, MEANS, COVARIANCES)
    np.testing.assert_array_equal(sampler.sample_numpy(5, seed=1), sampler.sample_numpy(5, seed=1))
    assert not np.allclose(sampler.sample_numpy(5, seed=1), sampler.sample_numpy(5, seed=2))
    for seed in (3, tf.constant([3, 0])):
        np.testing.assert_array_equal(sampler.sample(5, seed=seed), sampler.sample(5, seed=seed))
    draws = np.asarray(sampler.sample(20000, seed=4))
    np.testing.assert_allclose(draws.mean(axis=0), WEIGHTS @ MEANS, atol=0.06)
    np.testing.assert_allclose(np.mean(draws[:, 0] < 0), 0.3, atol=0.015)
    graph_draw = tf.function(lambda n, s: sampler.sample(n, seed=tf.stack([s, 0])))
    np.testing.assert_array_equal(graph_draw(tf.constant(4), tf.constant(9)),
                                  graph_draw(tf.constant(4), tf.constant(9)))


def test_save_and_load_round_trip_without_pickle(tmp_path):
    sampler = GaussianMixtureSampler(WEIGHTS, MEANS, COVARIANCES)
    path = tmp_path / "latent_gmm.npz"
    sampler.save(path)
    loaded = GaussianMixtureSampler.load(path)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(sampler, name))
    np.testing.assert_array_equal(loaded.sample_numpy(3, seed=0), sampler.sample_numpy(3, seed=0))
    with pytest.raises(FileExistsError, match="overwrite"):
        sampler.save(path)
    with pytest.raises(ValueError, match=r"\.npz"):
        sampler.save(tmp_path / "gmm.json")
    np.savez(tmp_path / "other.npz", weights=WEIGHTS)
    with pytest.raises(ValueError, match="lacks"):
        GaussianMixtureSampler.load(tmp_path / "other.npz")
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object))
    (tmp_path / "pickled.npz").write_bytes((tmp_path / "pickled.npy").read_bytes())
    with pytest.raises(ValueError, match="pickled.npz"):
        GaussianMixtureSampler.load(tmp_path / "pickled.npz")
    np.savez(tmp_path / "nan.npz", weights=WEIGHTS, means=MEANS * np.nan, covariances=COVARIANCES)
    with pytest.raises(ValueError, match=r"nan.npz is not a readable latent sampler file: means must be finite"):
        GaussianMixtureSampler.load(tmp_path / "nan.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latent_gmm.npz", "nan.npz", "other.npz", "pickled.npy", "pickled.npz"]  # no temporary files left


@pytest.mark.parametrize("args, word", [
    ((np.array([0.5, 0.6]), MEANS, COVARIANCES), "sum to 1"),
    ((WEIGHTS, MEANS[:1], COVARIANCES), "means"),
    ((WEIGHTS, MEANS, -COVARIANCES), "positive definite"),
    ((WEIGHTS, np.where(np.arange(MEANS.size).reshape(MEANS.shape) == 1, np.nan, MEANS), COVARIANCES),
     "means must be finite, got nan"),
])
def test_bad_mixtures_are_refused(args, word):
    with pytest.raises(ValueError, match=word):
        GaussianMixtureSampler(*args)


def test_fit_refuses_bad_codes():
    with pytest.raises(ValueError, match="num_components"):
        GaussianMixtureSampler.fit(np.zeros((3, 2)), num_components=5)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixtureSampler.fit(np.full((10, 2), np.nan), num_components=2)


def test_a_fitted_mixture_makes_an_autoencoder_generative(real_batch):
    x, _ = real_batch
    ae = vae_tf.make_model("ae", "mlp", (28, 28, 1), 4, hidden_units=(32,), seed=0)
    assert not ae.can_sample
    with pytest.raises(ValueError, match="latent_sampler"):
        ae.sample(2)
    assert "sample" not in ae.export_signatures()
    sampler = GaussianMixtureSampler.fit_model(ae, x, num_components=3)
    assert sampler.latent_dim == 4
    images = np.asarray(ae.sample(6, seed=1, latent_sampler=sampler))
    assert images.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(images, ae.sample(6, seed=1, latent_sampler=sampler))
    sample, _ = ae.export_signatures(latent_sampler=sampler)["sample"]
    exported = sample(tf.constant(6), tf.constant(1))["images"].numpy()
    np.testing.assert_allclose(exported, images, atol=1e-6)  # seed s in the graph = (s, 0) eagerly
