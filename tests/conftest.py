"""Shared fixtures. The CPU is split into two logical devices before TensorFlow starts,
so MirroredStrategy can run with two replicas on any machine."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

MNIST_DIR = pathlib.Path(
    os.environ.get(
        "VAE_TF_MNIST_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    )
)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST test set: images float32 in [0, 1], shape (N, 28, 28, 1); labels int32."""
    from vae_tf.data import read_idx

    images_path = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    if not images_path.is_file():
        pytest.fail(f"MNIST test files not found in {MNIST_DIR} (set VAE_TF_MNIST_DIR)")
    images = read_idx(images_path)[..., None].astype("float32") / 255.0
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz").astype("int32")
    return images, labels


@pytest.fixture
def mnist_batch(mnist):
    """512 real digits and their labels."""
    images, labels = mnist
    return images[:512], labels[:512]


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session: separate
    strategy objects in one process reuse collective keys and abort each other."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
