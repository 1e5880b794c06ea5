"""Shared fixtures. The CPU is split into two logical devices before TensorFlow starts,
so MirroredStrategy can run with two replicas on any machine."""

import atexit
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

# Real data every test may use: Fashion-MNIST from the Debian package that README's test
# command installs. SMALL_DIR holds its 10,000 t10k images alone (8,000 train, 2,000 test
# once vae_tf carves them), for quick end-to-end runs.
FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
SMALL_DIR = pathlib.Path(tempfile.mkdtemp(prefix="vae-tf-tests-"))
atexit.register(shutil.rmtree, SMALL_DIR, ignore_errors=True)
for _name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    (SMALL_DIR / _name).symlink_to(FASHION_DIR / _name)

# Real MNIST digits are optional (an out-of-distribution set): tests that need them skip
# unless one of these holds the t10k IDX files.
MNIST_DIRS = [
    pathlib.Path(p) for p in (
        os.environ.get("VAE_TF_MNIST_DIR"),
        pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist",
    ) if p
]
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _read_t10k(directory):
    from vae_tf.data import read_idx

    images = read_idx(directory / MNIST_FILES[0])[..., None].astype("float32") / 255.0
    return images, read_idx(directory / MNIST_FILES[1]).astype("int32")


@pytest.fixture(scope="session")
def real_images():
    """The Fashion-MNIST test set: images float32 in [0, 1], (10000, 28, 28, 1); labels int32."""
    if not (FASHION_DIR / MNIST_FILES[0]).is_file():
        pytest.fail(f"Fashion-MNIST not found in {FASHION_DIR}: "
                    "apt-get update && apt-get install dataset-fashion-mnist (README, Tests)")
    return _read_t10k(FASHION_DIR)


@pytest.fixture
def real_batch(real_images):
    """512 real Fashion-MNIST images and their labels."""
    images, labels = real_images
    return images[:512], labels[:512]


@pytest.fixture(scope="session")
def mnist_dir():
    """A directory holding the real MNIST t10k IDX files; the test skips without one."""
    for directory in MNIST_DIRS:
        if all((directory / name).is_file() for name in MNIST_FILES):
            return directory
    pytest.skip(f"real MNIST digits not found ({', '.join(MNIST_FILES)}): set VAE_TF_MNIST_DIR "
                f"to a directory holding them (looked in {', '.join(map(str, MNIST_DIRS))})")


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The real MNIST test set, shaped like `real_images`."""
    return _read_t10k(mnist_dir)


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
