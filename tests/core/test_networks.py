import numpy as np
import pytest

import vae_tf

IMAGE_SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3), (250, 250, 3), (27, 33, 2)]


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("num_classes", [None, 10])
def test_conv_builders_produce_exact_shapes(shape, num_classes):
    encoder = vae_tf.build_conv_encoder(shape, 5, filters=(4, 8), num_classes=num_classes)
    decoder = vae_tf.build_conv_decoder(shape, 5, filters=(8, 4), num_classes=num_classes)
    x = np.random.rand(2, *shape).astype("float32")
    labels = np.array([1, 9])
    inputs = x if num_classes is None else [x, labels]
    z_mean, z_log_var, z = encoder(inputs)
    assert z_mean.shape == z_log_var.shape == z.shape == (2, 5)
    z = np.asarray(z)
    out = decoder(z if num_classes is None else [z, labels])
    assert tuple(out.shape) == (2, *shape)


@pytest.mark.parametrize("shape", [(784,), (28, 28), (28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("num_classes", [None, 3])
def test_mlp_builders_produce_exact_shapes(shape, num_classes):
    encoder = vae_tf.build_mlp_encoder(shape, 20, hidden_units=(16,), num_classes=num_classes)
    decoder = vae_tf.build_mlp_decoder(shape, 20, hidden_units=(16,), num_classes=num_classes)
    x = np.random.rand(3, *shape).astype("float32")
    labels = np.array([0, 1, 2])
    outputs = encoder(x if num_classes is None else [x, labels])
    assert [tuple(o.shape) for o in outputs] == [(3, 20)] * 3
    z = np.asarray(outputs[2])
    out = decoder(z if num_classes is None else [z, labels])
    assert tuple(out.shape) == (3, *shape)


def test_mlp_layers_start_as_pytorch_linear_layers(tmp_path):
    """Weights and biases U(+-1/sqrt(fan_in)), as torch.nn.Linear: Keras's Glorot weights
    and zero biases cost 0.3 nats of test NLL (docs/guides/defaults.md)."""
    import keras

    vae = vae_tf.make_model("vae", "mlp", (28, 28, 1), 20, hidden_units=(400,))
    fan_in = {"encoder": {"dense_0": 784, "z_mean": 400, "z_log_var": 400},
              "decoder": {"dense_0": 20, "dense_out": 400}}
    for network, layers in fan_in.items():
        for name, inputs in layers.items():
            kernel, bias = getattr(vae, network).get_layer(name).get_weights()
            limit = 1 / np.sqrt(inputs)
            for weights in (kernel, bias):  # uniform over the whole interval, biases too
                assert 0 < np.abs(weights).max() <= limit, (network, name)
                if weights.size >= 400:
                    assert abs(weights.std() - limit / np.sqrt(3)) < 0.1 * limit, (network, name)
    assert np.abs(vae.encoder.get_layer("dense_0").get_weights()[0]).max() < np.sqrt(6 / (784 + 400))
    path = tmp_path / "decoder.keras"  # the initializers serialize: the network saves and loads
    vae.decoder.save(path)
    np.testing.assert_array_equal(keras.saving.load_model(path).get_weights()[0], vae.decoder.get_weights()[0])


def test_deterministic_encoders_output_z_only():
    for build in (vae_tf.build_mlp_encoder, vae_tf.build_conv_encoder):
        encoder = build((28, 28, 1), 7, variational=False)
        z = encoder(np.zeros((2, 28, 28, 1), "float32"))
        assert tuple(z.shape) == (2, 7)
        assert not any(isinstance(layer, vae_tf.Sampling) for layer in encoder.layers)


def test_builders_are_named_and_conditional_ones_take_a_label_input():
    encoder = vae_tf.build_conv_encoder((28, 28, 1), 2, num_classes=10)
    decoder = vae_tf.build_mlp_decoder((28, 28, 1), 2, num_classes=10)
    assert (encoder.name, decoder.name) == ("conv_encoder", "mlp_decoder")
    assert [t.name for t in encoder.inputs] == ["images", "label"]
    assert [t.name for t in decoder.inputs] == ["z", "label"]


def test_conv_encoder_dense_units_adds_a_dense_layer():
    encoder = vae_tf.build_conv_encoder((28, 28, 1), 2, dense_units=16)
    assert encoder.get_layer("dense").units == 16


def test_the_label_changes_the_output():
    decoder = vae_tf.build_mlp_decoder((4,), 2, hidden_units=(8,), num_classes=3)
    z = np.ones((2, 2), "float32")
    out = np.asarray(decoder([z, np.array([0, 1])]))
    assert not np.allclose(out[0], out[1])


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: vae_tf.build_mlp_encoder((784,), 0), "latent_dim"),
        (lambda: vae_tf.build_mlp_decoder((784,), -2), "latent_dim"),
        (lambda: vae_tf.build_conv_encoder((28, 28), 2), "input_shape"),
        (lambda: vae_tf.build_conv_decoder((28, 28, 1, 1), 2), "output_shape"),
        (lambda: vae_tf.build_mlp_encoder((28, 0, 1), 2), "input_shape"),
        (lambda: vae_tf.build_conv_encoder((28, 28, 1), 2, filters=()), "filters"),
        (lambda: vae_tf.build_mlp_encoder((784,), 2, hidden_units=(0,)), "hidden_units"),
        (lambda: vae_tf.build_mlp_encoder((784,), 2, num_classes=1), "num_classes"),
        (lambda: vae_tf.build_mlp_decoder((784,), 2, activation="sigmoid"), "activation must be one of"),
        (lambda: vae_tf.build_conv_encoder((8, 8, 1), 2, activation="relu6"), "activation must be one of"),
    ],
)
def test_builders_reject_bad_arguments(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_hidden_layers_take_the_activation_asked_for():
    """The IWAE paper's networks are tanh MLPs: every hidden layer, not the output layers."""
    encoder = vae_tf.build_mlp_encoder((784,), 50, hidden_units=(200, 200), activation="tanh")
    decoder = vae_tf.build_conv_decoder((8, 8, 1), 2, filters=(4,), activation="elu")
    hidden = [layer.activation.__name__ for layer in encoder.layers if layer.name.startswith("dense_")]
    assert hidden == ["tanh", "tanh"]
    assert [layer.activation.__name__ for layer in decoder.layers if hasattr(layer, "activation")] == \
        ["elu", "elu", "linear"]
    assert encoder.get_layer("z_mean").activation.__name__ == "linear"
