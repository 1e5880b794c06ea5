import numpy as np
import pytest

import vae_tf
from vae_tf.analysis import plots


def _row_labels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def test_vae_traversals_one_row_per_dimension_sorted_by_kl():
    images = np.random.default_rng(0).uniform(size=(20, 28, 28, 1)).astype("float32")
    vae = vae_tf.make_model("vae", "mlp", (28, 28, 1), 4, hidden_units=(16,))
    fig = plots.traversals(vae, images, seeds=2, steps=5)
    assert len(fig.axes) == 2
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape[:2] == (4 * 29 - 1, 5 * 29 - 1)  # 4 rows of 28-px images, 5 columns, 1-px gaps
    labels = _row_labels(fig.axes[0])
    assert len(labels) == 4 and all("nats" in label for label in labels)
    codes = vae.encode(images)
    z_mean, z_log_var = np.asarray(codes["z_mean"]), np.asarray(codes["z_log_var"])
    kl = (0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var)).mean(axis=0)
    expected = [f"z[{j}]  KL {kl[j]:.2f} nats" for j in np.argsort(-kl)]
    assert labels == expected
    assert "KL" in fig._suptitle.get_text()


def test_the_middle_column_decodes_the_seed_code():
    images = np.random.default_rng(1).uniform(size=(6, 28, 28, 1)).astype("float32")
    vae = vae_tf.make_model("vae", "mlp", (28, 28, 1), 2, hidden_units=(8,))
    grid = plots.traversals(vae, images, seeds=1, steps=3).axes[0].images[0].get_array()
    z_mean = vae.encode(images[:1])["z_mean"]
    centre = np.asarray(vae.decode(z_mean))[0, ..., 0]
    assert np.allclose(grid[:28, 29:57], centre, atol=1e-5)


def test_ae_traversals_have_no_kl_labels():
    images = np.random.default_rng(0).uniform(size=(10, 28, 28, 1)).astype("float32")
    ae = vae_tf.make_model("ae", "mlp", (28, 28, 1), 3, hidden_units=(8,))
    labels = _row_labels(plots.traversals(ae, images, seeds=1, steps=4).axes[0])
    assert labels == ["z[0]", "z[1]", "z[2]"]


def test_bad_arguments_are_refused():
    images = np.zeros((2, 28, 28, 1), "float32")
    vae = vae_tf.make_model("vae", "mlp", (28, 28, 1), 2, hidden_units=(8,))
    with pytest.raises(ValueError, match="seeds"):
        plots.traversals(vae, images, seeds=3)
    with pytest.raises(ValueError, match="steps"):
        plots.traversals(vae, images, seeds=1, steps=1)
