import numpy as np
import pytest
from PIL import Image

import vae_tf
from vae_tf.analysis import plots


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


FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def legend_texts(fig):
    return [text.get_text() for text in fig.legends[0].get_texts()]


def test_latent_scatter_names_the_classes_in_its_legend():
    z = np.random.default_rng(0).normal(size=(60, 2))
    labels = np.arange(60) % 3 + 7  # classes 7, 8, 9 only
    assert legend_texts(plots.latent_scatter(z, labels, FASHION)) == ["Sneaker", "Bag", "Ankle boot"]
    assert legend_texts(plots.latent_scatter(z, labels)) == ["7", "8", "9"]  # names unknown
    with pytest.raises(ValueError, match="class_names has 3 names but the latent scatter needs 10"):
        plots.latent_scatter(z, labels, ("a", "b", "c"))


def test_latent_scatter_with_many_classes_has_a_colour_bar():
    fig = plots.latent_scatter(np.random.default_rng(0).normal(size=(100, 2)), np.arange(100) % 50)
    assert not fig.legends and fig.axes[1].get_ylabel() == "class"


def test_class_grid_names_its_rows():
    cvae = vae_tf.make_model("cvae", "mlp", (28, 28, 1), 2, num_classes=10, hidden_units=(8,))
    rows = lambda fig: [t.get_text() for t in fig.axes[0].get_yticklabels()]  # noqa: E731
    assert rows(plots.class_grid(cvae, per_class=3, class_names=FASHION)) == list(FASHION)
    assert rows(plots.class_grid(cvae, per_class=3)) == [str(k) for k in range(10)]
    with pytest.raises(ValueError, match="class_names has 2 names but the class grid needs 10"):
        plots.class_grid(cvae, class_names=("a", "b"))


def test_a_training_run_on_named_folders_draws_the_names(tmp_path, monkeypatch):
    from vae_tf.config import RunConfig
    from vae_tf.runs.training import train

    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        folder = tmp_path / "data" / name
        folder.mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (8, 8), np.uint8)).save(folder / f"{i}.png")
    drawn = {}

    def keep(name):  # record the figure that training draws
        original = getattr(plots, name)

        def draw(*args, **kwargs):
            drawn[name] = original(*args, **kwargs)
            return drawn[name]
        monkeypatch.setattr(plots, name, draw)

    keep("latent_scatter")
    keep("class_grid")
    train(RunConfig.from_dict(dict(model="cvae", dataset="folder", data_dir=str(tmp_path / "data"), image_size=(8, 8),
                      color_mode="grayscale", hidden_units=(8,), latent_dim=2, epochs=1, batch_size=8,
                      iw_samples=2, out=str(tmp_path / "runs"), name="shapes")), verbose=0)
    assert legend_texts(drawn["latent_scatter"]) == ["circle", "square"]
    assert [t.get_text() for t in drawn["class_grid"].axes[0].get_yticklabels()] == ["circle", "square"]


def test_learning_curves_draw_one_line_per_run_and_per_reference():
    fig = plots.learning_curves({"vae": ([1, 4, 13], [177.0, 120.5, 104.0]), "iwae": ([1, 4], [170.0, 115.0])},
                                {"paper": 86.76})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["vae", "iwae", "paper"]
    assert ax.get_xscale() == "log"
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [170.0, 115.0])
