import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.models.vqvae.pixelcnn import CausalConv2D, PixelCNNPrior

GRID = (4, 5)


def _prior(**kwargs):
    # First kernel 5 and two more layers: the vertical stack spans all 5 columns.
    return PixelCNNPrior(8, GRID, filters=8, num_layers=2, first_kernel_size=5, **kwargs)


def _randomize(prior):
    """Random weights and biases (at initialization, with zero biases, some logits tie);
    the ReLU head's bias is made large so no position's logits are cut off from its inputs."""
    for i, weight in enumerate(prior.trainable_weights):
        weight.assign(keras.random.normal(weight.shape, seed=i) * 0.5)
    prior.hidden.bias.assign(np.full(prior.hidden.bias.shape, 10.0, "float32"))
    return prior


@pytest.mark.parametrize("stack, include_centre, expected", [
    # Which inputs around the centre (row 2, column 2) one output sees, as a 5x5 window.
    ("vertical", True, [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0] * 5, [0] * 5]),
    ("horizontal", True, [[0] * 5, [0] * 5, [1, 1, 1, 0, 0], [0] * 5, [0] * 5]),
    ("horizontal", False, [[0] * 5, [0] * 5, [1, 1, 0, 0, 0], [0] * 5, [0] * 5]),
])
def test_causal_convolution_receptive_fields(stack, include_centre, expected):
    conv = CausalConv2D(1, 5, stack, include_centre=include_centre)
    conv.build((1, 5, 5, 1))
    conv.kernel.assign(np.ones(conv.kernel.shape, "float32"))
    seen = np.zeros((5, 5))
    for row in range(5):
        for col in range(5):
            impulse = np.zeros((1, 5, 5, 1), "float32")
            impulse[0, row, col, 0] = 1.0
            seen[row, col] = conv(impulse).numpy()[0, 2, 2, 0]
    np.testing.assert_array_equal(seen, expected)
    with pytest.raises(ValueError, match="stack"):
        CausalConv2D(1, 3, "diagonal")


@pytest.mark.parametrize("num_classes", [None, 3])
def test_each_position_is_blind_to_itself_and_later_positions(num_classes):
    prior = _prior(num_classes=num_classes)
    _randomize(prior)
    labels = None if num_classes is None else np.array([1], "int32")
    codes = np.random.randint(0, 8, (1, *GRID)).astype("int32")
    base = prior.logits(codes, labels).numpy().reshape(-1, 8)
    total = math.prod(GRID)
    for position in range(total):
        changed = codes.copy().reshape(-1)
        changed[position] = (changed[position] + 3) % 8
        logits = prior.logits(changed.reshape(1, *GRID), labels).numpy().reshape(-1, 8)
        # Positions up to and including the changed one see nothing of it...
        np.testing.assert_array_equal(logits[: position + 1], base[: position + 1])
        # ...and every later position does: no blind spot (and the test can fail).
        assert all(
            np.abs(logits[later] - base[later]).max() > 1e-6 for later in range(position + 1, total)
        )


def test_labels_change_the_logits():
    prior = _prior(num_classes=3)
    codes = np.zeros((2, *GRID), "int32")
    logits = prior.logits(np.concatenate([codes]), np.array([0, 2])).numpy()
    assert np.abs(logits[0] - logits[1]).max() > 1e-6


def test_nll_is_summed_cross_entropy_and_bits_per_dim_follow():
    prior = _prior()
    codes = np.random.randint(0, 8, (6, *GRID)).astype("int32")
    logits = prior.logits(codes).numpy().astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, codes[..., None], -1).reshape(6, -1).sum(1)
    np.testing.assert_allclose(prior.per_example_nll(codes), expected, rtol=1e-5)
    prior.compile()
    results = prior.evaluate(codes, batch_size=6, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["nll"], expected.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        results["bits_per_dim"], expected.mean() / (math.prod(GRID) * math.log(2)), rtol=1e-5
    )


def test_training_learns_a_structured_grid():
    prior = _prior()
    # Each grid repeats one code everywhere: after the first position it is predictable.
    codes = np.repeat(np.arange(8), 64)[:, None, None] * np.ones(GRID, "int32")
    codes = codes.astype("int32")
    prior.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = prior.fit(codes, epochs=4, batch_size=64, verbose=0).history["nll"]
    uniform = math.prod(GRID) * math.log(8)
    assert history[0] > 0.8 * uniform
    assert history[-1] < 0.3 * uniform


def test_sampling_is_reproducible_for_a_seed_and_matches_the_graph_version():
    prior = _prior(num_classes=3)
    calls = []
    a = prior.sample_codes(5, seed=7, labels=2, progress=lambda i, n: calls.append((i, n)))
    b = prior.sample_codes(5, seed=7, labels=2)
    c = prior.sample_codes(5, seed=8, labels=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (5, *GRID) and a.dtype == tf.int32
    assert calls == [(i + 1, 20) for i in range(20)]
    graph = tf.function(
        lambda n, s: prior.sample_codes_graph(n, s, 1.0, tf.fill([n], 2)),
        input_signature=[tf.TensorSpec((), tf.int32)] * 2,
    )
    np.testing.assert_array_equal(graph(5, 7), a)


def test_low_temperature_picks_the_most_likely_code():
    prior = _randomize(_prior())
    codes = prior.sample_codes(3, seed=0, temperature=1e-4)
    logits = prior.logits(codes).numpy()
    # With every draw near-greedy, each code is the argmax given the codes before it.
    np.testing.assert_array_equal(codes.numpy(), logits.argmax(-1))


def test_round_trip(tmp_path):
    prior = _randomize(_prior(num_classes=3))
    path = tmp_path / "prior.keras"
    prior.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    codes = np.random.randint(0, 8, (2, *GRID)).astype("int32")
    labels = np.array([0, 2], "int32")
    np.testing.assert_allclose(
        restored.logits(codes, labels), prior.logits(codes, labels), atol=1e-6
    )
    assert restored.get_config() == prior.get_config()


def test_bad_inputs():
    prior = _prior()
    with pytest.raises(ValueError, match=r"codes have shape \(1, 5, 4\)"):
        prior.logits(np.zeros((1, 5, 4), "int32"))
    with pytest.raises(ValueError, match="codes must be integers"):
        prior.logits(np.zeros((1, *GRID), "float32"))
    with pytest.raises(ValueError, match="not conditional"):
        prior.logits(np.zeros((1, *GRID), "int32"), np.zeros(1, "int32"))
    with pytest.raises(ValueError, match="temperature"):
        prior.sample_codes(2, temperature=0.0)
    with pytest.raises(ValueError, match="num_samples"):
        prior.sample_codes(0)
    conditional = _prior(num_classes=3)
    with pytest.raises(ValueError, match="pass labels"):
        conditional.sample_codes(2)
    with pytest.raises(ValueError, match="labels has 3 entries"):
        conditional.sample_codes(2, labels=np.array([0, 1, 2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class ids"):
        conditional.logits(np.zeros((1, *GRID), "int32"), np.array([3]))
    with pytest.raises(ValueError, match="grid_shape"):
        PixelCNNPrior(8, (4,))
