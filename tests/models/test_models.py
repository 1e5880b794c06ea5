import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_tf
from vae_tf.models import registry

from helpers import one_arch_each

SMALL = {"hidden_units": (64,), "filters": (8, 16)}


def small_model(kind, arch="mlp", **kwargs):
    num_classes = 10 if registry.get(kind).conditional else None
    return vae_tf.make_model(kind, arch, (28, 28, 1), 4, num_classes=num_classes, seed=1,
                             **SMALL, **kwargs)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_short_fit_on_real_digits_lowers_the_loss(kind, arch, real_batch):
    x, y = real_batch
    model = small_model(kind, arch)
    model.compile()
    before = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    history = model.fit(x, y, batch_size=64, epochs=6, verbose=0)
    after = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    expected_terms = {"loss", "reconstruction"} | ({"kl"} if kind != "ae" else set())
    assert set(history.history) == expected_terms
    assert after["loss"] < 0.9 * before["loss"]
    if kind != "ae":
        # loss is the negative ELBO: reconstruction + KL, all in nats per example.
        assert after["loss"] == pytest.approx(after["reconstruction"] + after["kl"], rel=1e-4)


def test_losses_are_in_nats_per_example(real_batch):
    x, _ = real_batch
    model = small_model("vae")
    terms = model.compute_terms(x[:32])
    per_example = model.likelihood.negative_log_likelihood(x[:32], model.decoder(
        model.encoder(x[:32])[2]))
    # An untrained Bernoulli decoder gives about 784 * log(2) nats per image.
    assert 300 < float(terms["reconstruction"]) < 1000
    assert per_example.shape == (32,)


def test_ae_and_vae_ignore_labels_and_accept_datasets(real_batch):
    x, y = real_batch
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)
    for kind in ("ae", "vae"):
        model = small_model(kind)
        model.compile()
        assert np.isfinite(model.fit(dataset, epochs=1, verbose=0).history["loss"][0])
        assert np.isfinite(model.fit(x, epochs=1, batch_size=128, verbose=0).history["loss"][0])


def test_fitting_a_dataset_does_not_warn_about_shuffling(real_batch):
    import warnings

    x, _ = real_batch
    model = small_model("vae")
    model.compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(tf.data.Dataset.from_tensor_slices(x[:256]).batch(128), epochs=1, verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)]


def test_gaussian_likelihood_with_learned_sigma_trains(real_batch):
    x, _ = real_batch
    model = small_model("vae", likelihood="gaussian", sigma=0.5, learn_sigma=True)
    model.compile()
    sigma_before = float(model.likelihood.sigma)
    history = model.fit(x, epochs=3, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert float(model.likelihood.sigma) != sigma_before
    # Gaussian decode returns means: no sigmoid squashing.
    assert model.decode(np.zeros((1, 4), "float32")).shape == (1, 28, 28, 1)


class SetBeta(keras.callbacks.Callback):
    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_begin(self, epoch, logs=None):
        self.model.beta.assign(self.values[epoch])


def test_beta_changed_by_a_callback_changes_the_kl_contribution(real_batch):
    x, _ = real_batch
    model = small_model("vae")
    model.compile()
    history = model.fit(x, epochs=3, batch_size=128, verbose=0,
                        callbacks=[SetBeta([1.0, 0.0, 2.5])]).history
    contribution = np.array(history["loss"]) - np.array(history["reconstruction"])
    kl = np.array(history["kl"])
    np.testing.assert_allclose(contribution, [1.0 * kl[0], 0.0, 2.5 * kl[2]], rtol=1e-3, atol=1e-3)
    assert kl.min() > 0


def test_methods_return_the_documented_shapes(real_batch):
    x, y = real_batch
    vae = small_model("vae")
    codes = vae.encode(x[:5])
    assert set(codes) == set(vae.encode_outputs) == {"z_mean", "z_log_var"}
    z_mean, z_log_var = codes["z_mean"], codes["z_log_var"]
    assert z_mean.shape == z_log_var.shape == (5, 4)
    assert vae.decode(z_mean).shape == (5, 28, 28, 1)
    assert vae.sample(6, seed=3).shape == (6, 28, 28, 1)
    np.testing.assert_allclose(vae.sample(3, seed=3), vae.sample(3, seed=3))
    path = np.asarray(vae.interpolate(x[0], x[1], steps=7))
    assert path.shape == (7, 28, 28, 1)
    np.testing.assert_allclose(path[0], vae.reconstruct(x[:1])[0], atol=1e-6)
    np.testing.assert_allclose(path[-1], vae.reconstruct(x[1:2])[0], atol=1e-6)
    reconstruction = np.asarray(vae.reconstruct(x[:5]))
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    np.testing.assert_allclose(reconstruction, vae.reconstruct(x[:5]))  # deterministic
    np.testing.assert_allclose(vae(x[:5]), reconstruction)

    ae = small_model("ae")
    assert set(ae.encode(x[:5])) == set(ae.encode_outputs) == {"z"}
    assert ae.encode(x[:5])["z"].shape == (5, 4)
    assert ae.interpolate(x[0], x[1], steps=3).shape == (3, 28, 28, 1)


def test_cvae_generates_the_chosen_class_and_needs_labels(real_batch):
    x, y = real_batch
    cvae = small_model("cvae")
    assert cvae.sample(4, labels=7, seed=0).shape == (4, 28, 28, 1)
    assert cvae.sample(10).shape == (10, 28, 28, 1)
    same_z = [np.asarray(cvae.sample(1, labels=k, seed=0)) for k in (2, 5)]
    assert not np.allclose(*same_z)
    z_mean = cvae.encode(x[:3], y[:3])["z_mean"]
    assert cvae.decode(z_mean, y[:3]).shape == (3, 28, 28, 1)
    assert cvae.reconstruct(x[:3], y[:3]).shape == (3, 28, 28, 1)
    assert cvae([x[:3], y[:3]]).shape == (3, 28, 28, 1)
    assert cvae.interpolate(x[0], x[1], steps=4, labels=3).shape == (4, 28, 28, 1)
    with pytest.raises(ValueError, match="CVAE needs labels"):
        cvae.compile()
        cvae.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="CVAE needs labels"):
        cvae.encode(x[:3])
    with pytest.raises(ValueError, match="labels has 2 entries"):
        cvae.sample(3, labels=np.array([1, 2]))


def test_cvae_rejects_labels_out_of_range(real_batch):
    x, _ = real_batch
    cvae = small_model("cvae")
    cvae.compile()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 10\)"):
        cvae.encode(x[:2], np.array([3, 10]))
    with pytest.raises(ValueError, match=r"class ids in \[0, 10\), found -1..2"):  # checked at the door
        cvae.fit(x[:4], np.array([0, 1, -1, 2]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="integer class ids"):
        cvae.encode(x[:2], np.array([0.5, 1.0]))


def test_mismatched_image_shape_names_both_shapes():
    model = small_model("vae")
    with pytest.raises(ValueError, match=r"\(32, 32, 3\).*\(28, 28, 1\)"):
        model.encode(np.zeros((2, 32, 32, 3), "float32"))
    model.compile()
    with pytest.raises(ValueError, match=r"\(28, 28\).*\(28, 28, 1\)"):
        model.fit(np.zeros((4, 28, 28), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"z has shape \(2, 3\)"):
        model.decode(np.zeros((2, 3), "float32"))


def test_non_conditional_models_refuse_labels_in_methods():
    with pytest.raises(ValueError, match="not conditional"):
        small_model("vae").encode(np.zeros((1, 28, 28, 1), "float32"), labels=[1])


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"kind": "gan", "arch": "mlp"}, "kind"),
        ({"kind": "vae", "arch": "rnn"}, "arch"),
        ({"kind": "vae", "arch": "mlp", "latent_dim": 0}, "latent_dim"),
        ({"kind": "vae", "arch": "mlp", "beta": -0.5}, "beta"),
        ({"kind": "vae", "arch": "mlp", "likelihood": "poisson"}, "likelihood"),
        ({"kind": "vae", "arch": "mlp", "likelihood": "gaussian", "sigma": 0.0}, "sigma"),
        ({"kind": "vae", "arch": "conv", "input_shape": (784,)}, "input_shape"),
        ({"kind": "cvae", "arch": "mlp", "num_classes": 1}, "num_classes"),
        ({"kind": "cvae", "arch": "mlp", "num_classes": None}, "num_classes"),
        ({"kind": "vae", "arch": "mlp", "num_classes": 10}, "num_classes"),
        ({"kind": "ae", "arch": "mlp", "beta": 2.0}, "beta"),
    ],
)
def test_make_model_rejects_bad_arguments(kwargs, word):
    arguments = {"input_shape": (28, 28, 1), "latent_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=word):
        vae_tf.make_model(**arguments)


def test_vae_needs_an_encoder_with_one_sampling_layer():
    encoder = vae_tf.build_mlp_encoder((4,), 2, variational=False)
    with pytest.raises(ValueError, match="Sampling"):
        vae_tf.VAE(encoder, vae_tf.build_mlp_decoder((4,), 2))
    with pytest.raises(ValueError, match="num_classes"):
        vae_tf.CVAE(vae_tf.build_mlp_encoder((4,), 2, num_classes=2),
                    vae_tf.build_mlp_decoder((4,), 2, num_classes=2), num_classes=0)


@pytest.mark.parametrize("kind, arch", one_arch_each())
def test_get_config_round_trip(kind, arch):
    model = small_model(kind, arch, likelihood="gaussian", sigma=0.2)
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


@pytest.mark.parametrize("kind, arch", one_arch_each())
def test_keras_file_round_trip_keeps_weights_outputs_and_training(kind, arch, real_batch, tmp_path):
    x, y = real_batch
    model = small_model(kind, arch)
    model.compile()
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    if model.is_variational:
        model.beta.assign(0.7)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    inputs = [x[:8], y[:8]] if model.is_conditional else x[:8]
    np.testing.assert_array_equal(np.asarray(model(inputs)), np.asarray(restored(inputs)))
    if model.is_variational:
        assert float(restored.beta) == pytest.approx(0.7)
    before = restored.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)["loss"]
    restored.fit(x, y, batch_size=64, epochs=2, verbose=0)
    after = restored.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)["loss"]
    assert after < before
