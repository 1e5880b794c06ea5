"""Planar and inverse autoregressive flow steps (vae_tf.core.flows): log-determinants against
the Jacobian autodiff gives, the autoregressive structure, the planar invertibility
condition, and the identity an IAF with unit gates is."""

import numpy as np
import pytest
import tensorflow as tf

from vae_tf.core import flows

D, C, BATCH = 4, 3, 6


def inputs(seed=0, batch=BATCH):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(batch, D)).astype("float32")
    context = rng.normal(size=(batch, C)).astype("float32")
    return tf.constant(z), tf.constant(context)


def built(layer, scale=0.5, seed=1):
    """`layer` built for (D, C), its weights redrawn N(0, scale^2) so no step is near the
    identity (and none so far from it that a float32 Jacobian's determinant is lost)."""
    layer.build([(None, D), (None, C)])
    rng = np.random.default_rng(seed)
    layer.set_weights([scale * rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def jacobian(layer, z, context):
    """dz'/dz per example (batch, D, D) and the layer's log-determinants."""
    with tf.GradientTape() as tape:
        tape.watch(z)
        z_next, log_det = layer([z, context])
    return tape.batch_jacobian(z_next, z).numpy(), log_det.numpy()


@pytest.mark.parametrize("layer", [
    lambda: flows.PlanarStep(),
    lambda: flows.IAFStep(8),
    lambda: flows.IAFStep(8, reverse=True),
    lambda: flows.Flow("planar", 3),
    lambda: flows.Flow("iaf", 3, 8),
], ids=["planar", "iaf", "iaf-reversed", "planar-3-steps", "iaf-3-steps"])
def test_log_determinant_is_that_of_the_jacobian(layer):
    z, context = inputs()
    matrices, log_det = jacobian(built(layer()), z, context)
    signs, expected = np.linalg.slogdet(matrices.astype("float64"))
    assert np.all(signs > 0)  # orientation kept: a planar step with u_hat, IAF gates > 0
    assert np.abs(expected).max() > 0.1  # not a near-identity map
    np.testing.assert_allclose(log_det, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_outputs_depend_only_on_the_variables_before_them(reverse):
    z, context = inputs()
    step = built(flows.IAFStep(16, reverse=reverse))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        shift, scale = step.shift_and_scale(z, context)
        z_next, _ = step([z, context])
    order = np.arange(D)[::-1] if reverse else np.arange(D)
    position = np.argsort(order)  # position[i]: where variable i comes in the order
    later_or_same = position[None, :] >= position[:, None]  # [i, j]: j at or after i
    for output in (shift, scale):
        grads = tape.batch_jacobian(output, z).numpy()
        assert np.all(grads[:, later_or_same] == 0)
        assert np.any(grads[:, ~later_or_same] != 0)  # and on the ones before, they do
    matrices = tape.batch_jacobian(z_next, z).numpy()
    strictly_later = later_or_same & ~np.eye(D, dtype=bool)
    assert np.all(matrices[:, strictly_later] == 0)
    np.testing.assert_allclose(np.diagonal(matrices, axis1=1, axis2=2), tf.sigmoid(scale).numpy(), rtol=1e-6)


def test_made_masks_connect_each_output_to_earlier_inputs_only():
    inputs_mask, outputs_mask = flows.made_masks(4, 10)
    paths = inputs_mask @ outputs_mask  # [j, i]: paths from input j to output i, j < i only
    assert np.all(np.tril(paths) == 0) and np.all(paths[np.triu_indices(4, 1)] > 0)
    reversed_paths = np.dot(*flows.made_masks(4, 10, reverse=True))  # j > i only
    assert np.all(np.triu(reversed_paths) == 0) and np.all(reversed_paths[np.tril_indices(4, -1)] > 0)
    assert not np.any(np.dot(*flows.made_masks(1, 5)))  # one variable: the context alone


def test_consecutive_iaf_steps_reverse_the_order():
    flow = flows.Flow("iaf", 3, 8)
    assert [step.reverse for step in flow.flow_steps] == [False, True, False]


def test_planar_steps_are_invertible_after_the_reparametrization():
    """w.u_hat > -1 however negative w.u is (Rezende & Mohamed 2015, appendix A), so the
    map is increasing along w: f(z) is one-to-one."""
    step = built(flows.PlanarStep(), scale=0.1)
    kernel, bias = step.get_weights()
    d = D
    bias[:d] = -0.4 * np.array([1.0, -0.5, 2.0, 1.0])  # u = -0.4 w: w.u near -2.5 < -1
    bias[d:2 * d] = np.array([1.0, -0.5, 2.0, 1.0])
    step.set_weights([kernel, bias])
    _, context = inputs()
    u_hat, w, b, margin = (t.numpy() for t in step.parameters(context))
    raw_u = (context.numpy() @ kernel + bias)[:, :d]
    assert np.all(np.sum(w * raw_u, axis=1) < -1)  # the raw u would fold the space
    np.testing.assert_allclose(np.sum(w * u_hat, axis=1), margin - 1, rtol=1e-5, atol=1e-5)
    assert np.all(np.sum(w * u_hat, axis=1) > -1)
    # Along the line z = t w / |w|^2 (w.z = t), w.f(z) = t + w.u_hat tanh(t + b) increases.
    t = np.linspace(-6, 6, 241, dtype="float32")
    for row in range(BATCH):
        line = t[:, None] * w[row] / np.sum(w[row] ** 2)
        moved, _ = step([tf.constant(line), tf.repeat(context[row:row + 1], len(t), axis=0)])
        assert np.all(np.diff(moved.numpy() @ w[row]) > 0)


def test_an_iaf_with_unit_gates_is_the_identity():
    """Zero networks but a large scale bias: sigma = 1, 1 - sigma = 0, log sigma = 0."""
    flow = flows.Flow("iaf", 2, 8)
    flow.build([(None, D), (None, C)])
    for step in flow.flow_steps:
        step.set_weights([np.full(w.shape, 100.0 if w.path.endswith("scale_bias") else 0.0, "float32")
                          for w in step.weights])
    z, context = inputs()
    z_next, log_det = flow([z, context])
    np.testing.assert_array_equal(z_next.numpy(), z.numpy())
    np.testing.assert_array_equal(log_det.numpy(), np.zeros(BATCH))


def test_zero_steps_is_the_identity():
    z, context = inputs()
    flow = flows.Flow("planar", 0)
    z_next, log_det = flow([z, context])
    np.testing.assert_array_equal(z_next.numpy(), z.numpy())
    np.testing.assert_array_equal(log_det.numpy(), np.zeros(BATCH))


def test_bad_settings_name_the_option():
    with pytest.raises(ValueError, match="flow must be one of"):
        flows.Flow("maf", 2)
    with pytest.raises(ValueError, match="flow_steps must be an integer >= 0, got -1"):
        flows.Flow("iaf", -1)
    with pytest.raises(ValueError, match="flow_hidden_units must be an integer >= 1, got 0"):
        flows.Flow("iaf", 2, 0)
    with pytest.raises(ValueError, match="hidden_units must be an integer >= 1"):
        flows.IAFStep(0)
