import numpy as np
import pytest
from PIL import Image

import vae_tf
from vae_tf import plots


def assert_png_drawn(path, min_size=(300, 150)):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("RGB"), "float32")
    assert pixels.std() > 10  # not blank


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_save_all_writes_every_plot(kind, real_batch, tmp_path):
    x, y = real_batch
    model = vae_tf.make_model(kind, "mlp", (28, 28, 1), 2, num_classes=10 if kind == "cvae" else None,
                              hidden_units=(32,))
    history = {"loss": [300.0, 200.0], "val_loss": [310.0, 220.0], "reconstruction": [290.0, 180.0],
               "kl": [10.0, 20.0]}
    z = np.random.default_rng(0).normal(size=(100, 2))
    paths = plots.save_all(model, x[:100], y[:100], history, tmp_path, z=z)
    names = {p.stem for p in paths}
    expected = {"reconstructions", "interpolations", "samples", "manifold", "latent_scatter",
                "training_curves", "traversals"} | ({"class_grid"} if kind == "cvae" else set())
    assert names == expected
    for path in paths:
        assert_png_drawn(path)


def test_ae_has_no_prior_plots(real_batch, tmp_path):
    x, y = real_batch
    ae = vae_tf.make_model("ae", "conv", (28, 28, 1), 3, filters=(4, 8))
    names = {p.stem for p in plots.save_all(ae, x[:20], y[:20], None, tmp_path)}
    assert names == {"reconstructions", "interpolations", "traversals"}


def test_rgb_images_render_in_colour(tmp_path):
    images = np.zeros((4, 8, 8, 3), "float32")
    images[..., 0] = 1.0  # pure red
    fig = plots.image_figure(plots.image_grid(images, 4), "red", "x", "y")
    path = plots.save_figure(fig, tmp_path / "red.png")
    pixels = np.asarray(Image.open(path).convert("RGB"), "int32")
    assert ((pixels[..., 0] > 200) & (pixels[..., 1] < 50)).sum() > 100


def test_latent_scatter_projects_with_pca_and_says_so():
    fig = plots.latent_scatter(np.random.default_rng(0).normal(size=(50, 6)), np.arange(50) % 3)
    assert "PCA" in fig.axes[0].get_title()
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()


def test_every_figure_has_a_title_and_axis_labels(real_batch):
    x, y = real_batch
    vae = vae_tf.make_model("vae", "mlp", (28, 28, 1), 2, hidden_units=(16,))
    figures = [plots.reconstructions(vae, x), plots.samples(vae), plots.manifold(vae, size=5),
               plots.interpolations(vae, x, pairs=2, steps=4),
               plots.training_curves({"loss": [2.0, 1.0], "kl": [0.5, 0.4]})]
    for fig in figures:
        ax = fig.axes[0]
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_manifold_needs_a_2d_latent():
    with pytest.raises(ValueError, match="latent_dim 2"):
        plots.manifold(vae_tf.make_model("vae", "mlp", (4,), 3, hidden_units=(4,)))
