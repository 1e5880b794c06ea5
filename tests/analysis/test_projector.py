"""TensorBoard Embedding Projector files: what is written, what TensorBoard serves."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.plugins import projector as tb_projector

import vae_tf
import vae_tf.analysis.projector
from vae_tf.analysis.projector import (
    SPRITE_LIMIT,
    TENSOR_NAME,
    latent_means,
    sprite_thumbnail_shape,
    write_latent_projector,
    write_projector,
)

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _tensor(log_dir):
    return tf.train.load_checkpoint(str(log_dir)).get_tensor(TENSOR_NAME)


def _config(log_dir):
    config = tb_projector.ProjectorConfig()
    text_format.Parse((log_dir / "projector_config.pbtxt").read_text(), config)
    return config


def _sprite_shape(log_dir):
    return tuple(tf.io.decode_png(tf.io.read_file(str(log_dir / "sprite.png"))).shape)


def _fake(n=50, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)).astype("float32"), rng.integers(0, 10, n).astype("int32"),
            rng.random((n, 28, 28, 1)).astype("float32"))


def test_files_hold_the_tensor_metadata_and_sprite(tmp_path):
    z, y, x = _fake()
    path = write_projector(tmp_path / "proj", z, y, NAMES, x)
    log_dir = tmp_path / "proj"
    assert path == log_dir / "projector_config.pbtxt"
    np.testing.assert_array_equal(_tensor(log_dir), z)
    rows = (log_dir / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "label\tindex"
    assert rows[1:] == [f"{NAMES[label]}\t{i}" for i, label in enumerate(y)]
    # 50 thumbnails in an 8 x 8 grid of 28 x 28 cells, unscaled.
    assert _sprite_shape(log_dir) == (8 * 28, 8 * 28, 1)
    sprite = tf.io.decode_png(tf.io.read_file(str(log_dir / "sprite.png"))).numpy()
    np.testing.assert_array_equal(sprite[28:56, 0:28, 0], np.round(x[8, ..., 0] * 255))
    (embedding,) = _config(log_dir).embeddings
    assert embedding.tensor_name == TENSOR_NAME
    assert embedding.metadata_path == "metadata.tsv"
    assert embedding.sprite.image_path == "sprite.png"
    assert list(embedding.sprite.single_image_dim) == [28, 28]
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1


def test_max_examples_keeps_the_first_rows_and_more_than_the_data_keeps_all(tmp_path):
    z, y, x = _fake()
    write_projector(tmp_path / "few", z, y, NAMES, x, max_examples=10)
    np.testing.assert_array_equal(_tensor(tmp_path / "few"), z[:10])
    assert len((tmp_path / "few" / "metadata.tsv").read_text().splitlines()) == 1 + 10
    assert _sprite_shape(tmp_path / "few") == (4 * 28, 4 * 28, 1)

    write_projector(tmp_path / "all", z, y, NAMES, x, max_examples=10_000)
    assert _tensor(tmp_path / "all").shape == (50, 4)
    assert len((tmp_path / "all" / "metadata.tsv").read_text().splitlines()) == 1 + 50


def test_zero_examples_writes_nothing(tmp_path):
    z, y, x = _fake()
    assert write_projector(tmp_path / "off", z, y, NAMES, x, max_examples=0) is None
    assert write_latent_projector(tmp_path / "off", object(), [], max_examples=0) is None
    assert not (tmp_path / "off").exists()


@pytest.mark.parametrize("change, message", [
    (dict(labels=np.zeros(49, "int32")), "labels must have one entry per embedding"),
    (dict(images=np.zeros((51, 28, 28, 1), "float32")), "images must have one entry per embedding"),
    (dict(labels=np.full(50, 10, "int32")), r"class ids in \[0, 10\)"),
    (dict(labels=None), "class_names needs labels"),
    (dict(images=np.zeros((50, 28), "float32")), "images must have shape"),
    (dict(embeddings=np.zeros((50,), "float32")), r"embeddings must have shape \(N, D\)"),
    (dict(embeddings=np.full((50, 4), np.nan, "float32")), "NaN"),
    (dict(max_examples=-1), "max_examples must be an integer >= 0"),
    (dict(max_examples=2.5), "max_examples must be an integer >= 0"),
])
def test_bad_inputs_raise_before_anything_is_written(tmp_path, change, message):
    z, y, x = _fake()
    arguments = dict(embeddings=z, labels=y, class_names=NAMES, images=x) | change
    with pytest.raises(ValueError, match=message):
        write_projector(tmp_path / "proj", **arguments)
    assert not (tmp_path / "proj").exists()


def test_without_labels_metadata_is_the_bare_index(tmp_path):
    z, _, _ = _fake(n=5)
    write_projector(tmp_path, z)
    # A single column has no header row in TensorBoard's metadata format.
    assert (tmp_path / "metadata.tsv").read_text().splitlines() == ["0", "1", "2", "3", "4"]
    assert not (tmp_path / "sprite.png").exists()
    assert not _config(tmp_path).embeddings[0].sprite.image_path


def test_writing_again_replaces_the_embedding(tmp_path):
    z, y, x = _fake()
    write_projector(tmp_path, z, y, NAMES, x)
    write_projector(tmp_path, z[:7, :3], y[:7], NAMES, x[:7])
    assert _tensor(tmp_path).shape == (7, 3)
    assert len(list(tmp_path.glob("latent-*.index"))) == 1
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    assert _sprite_shape(tmp_path) == (3 * 28, 3 * 28, 1)


def test_thumbnail_shapes_fit_the_sprite_limit():
    assert sprite_thumbnail_shape(2000, 250, 250) == (182, 182)  # a 45 x 45 grid
    assert sprite_thumbnail_shape(2000, 28, 28) == (28, 28)  # never scaled up
    assert sprite_thumbnail_shape(1000, 300, 600) == (128, 256)  # aspect kept, 32 x 32 grid
    with pytest.raises(ValueError, match="cannot fit"):
        sprite_thumbnail_shape(SPRITE_LIMIT**2 + 1, 28, 28)


def test_large_images_are_scaled_down_in_the_sprite(tmp_path, monkeypatch):
    monkeypatch.setattr(vae_tf.analysis.projector, "SPRITE_LIMIT", 512)
    pattern = np.zeros((250, 250, 3), "float32")
    pattern[:125, :, 0] = 1.0  # top half red
    z = np.random.default_rng(0).normal(size=(50, 8))
    write_projector(tmp_path, z, images=np.broadcast_to(pattern, (50, 250, 250, 3)))
    sprite = tf.io.decode_png(tf.io.read_file(str(tmp_path / "sprite.png"))).numpy()
    assert sprite.shape == (8 * 64, 8 * 64, 3)  # 8 x 8 grid of 512 // 8 = 64 px thumbnails
    np.testing.assert_array_equal(sprite[:32, :64, 0], 255)
    np.testing.assert_array_equal(sprite[32:64, :64, 0], 0)


@pytest.mark.slow
def test_2000_rgb_250px_images_fit_the_sprite_limit(tmp_path):
    # One image broadcast to 2,000 (no memory), with a pattern so the scaling shows.
    pattern = np.zeros((250, 250, 3), "uint8")
    pattern[:125, :, 0] = 255
    images = np.broadcast_to(pattern, (2000, 250, 250, 3))
    z = np.random.default_rng(0).normal(size=(2000, 8))
    write_projector(tmp_path, z, images=images)
    height, width, channels = _sprite_shape(tmp_path)
    assert (height, width, channels) == (45 * 182, 45 * 182, 3)
    assert max(height, width) <= SPRITE_LIMIT
    assert list(_config(tmp_path).embeddings[0].sprite.single_image_dim) == [182, 182]


@pytest.fixture
def dataset():
    """Three batches of 8 random images with labels, 20 examples in all."""
    x, y = _fake(n=20)[2], _fake(n=20)[1]
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_latent_means_of_the_models(kind, dataset):
    model = vae_tf.make_model(kind, "mlp", (28, 28, 1), 3,
                              num_classes=10 if kind == "cvae" else None, hidden_units=(16,))
    means, labels, inputs = latent_means(model, dataset, max_examples=13)
    x, y = next(iter(dataset.unbatch().batch(13)))
    expected = model.encode(x, y if kind == "cvae" else None)[model.code_name]
    assert means.shape == (13, 3)
    np.testing.assert_allclose(means, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(inputs, x)


def test_a_vqvae_projects_its_grid_vectors_averaged(dataset):
    """A code grid is one point per example: the model's `mean_code`, its z_e averaged."""
    model = vae_tf.make_model("vqvae", "conv", (28, 28, 1), 2, filters=(4, 4), num_embeddings=4, seed=0)
    means, labels, _ = latent_means(model, dataset)
    x, y = next(iter(dataset.unbatch().batch(100)))
    np.testing.assert_allclose(means, np.asarray(model.encode(x)["z_e"]).mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert means.shape == (20, 16)  # the default embedding_dim
    np.testing.assert_array_equal(labels, y)


def test_write_latent_projector_uses_all_data_and_drops_unset_labels(tmp_path, dataset):
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 3, hidden_units=(16,))
    write_latent_projector(tmp_path / "named", model, dataset, NAMES, max_examples=2000)
    assert _tensor(tmp_path / "named").shape == (20, 3)
    rows = (tmp_path / "named" / "metadata.tsv").read_text().splitlines()
    assert len(rows) == 21 and rows[1].split("\t")[0] in NAMES
    assert _sprite_shape(tmp_path / "named") == (5 * 28, 5 * 28, 1)

    unlabelled = dataset.map(lambda x, y: (x, tf.fill(tf.shape(y), -1)))
    write_latent_projector(tmp_path / "plain", model, unlabelled, NAMES)
    assert (tmp_path / "plain" / "metadata.tsv").read_text().splitlines()[:2] == ["0", "1"]


# --- the real TensorBoard server ------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, route, **query):
    url = f"http://127.0.0.1:{port}/data/plugin/projector/{route}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _tensorboard_command():
    script = pathlib.Path(sys.executable).with_name("tensorboard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tensorboard.main"]


@pytest.mark.slow
def test_tensorboard_serves_the_projector(tmp_path, real_images):
    """Starts `tensorboard` on a loopback port, makes the projector page's requests."""
    images, labels = real_images
    logs = tmp_path / "logs"
    with tf.summary.create_file_writer(str(logs / "train")).as_default():
        tf.summary.scalar("loss", 1.0, step=0)  # a training run beside it, as vae-tf writes
    z = np.random.default_rng(0).normal(size=(300, 6)).astype("float32")
    write_projector(logs / "projector", z, labels[:300], NAMES, images[:300], max_examples=250)

    port = _free_port()
    server = subprocess.Popen(
        _tensorboard_command() + ["--logdir", str(logs), "--host", "127.0.0.1",
                                  "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                runs = json.loads(_get(port, "runs"))
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"tensorboard did not answer: {server.communicate()[1][-2000:]}")
                time.sleep(0.5)
        assert runs == ["projector"]
        info = json.loads(_get(port, "info", run="projector"))
        (embedding,) = info["embeddings"]
        assert embedding["tensorName"] == TENSOR_NAME
        assert [int(d) for d in embedding["tensorShape"]] == [250, 6]
        name = dict(run="projector", name=TENSOR_NAME)
        points = np.frombuffer(_get(port, "tensor", **name), "float32").reshape(-1, 6)
        np.testing.assert_array_equal(points, z[:250])
        rows = _get(port, "metadata", **name).decode().splitlines()
        assert rows[0] == "label\tindex" and len(rows) == 1 + 250
        assert rows[1:4] == [f"{NAMES[labels[i]]}\t{i}" for i in range(3)]
        sprite = tf.io.decode_png(_get(port, "sprite_image", **name))
        assert tuple(sprite.shape) == (16 * 28, 16 * 28, 1)  # ceil(sqrt(250)) = 16
    finally:
        server.terminate()
        server.wait(timeout=30)
