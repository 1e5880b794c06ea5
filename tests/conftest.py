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
# unless one of these holds the t10k IDX files, or keras or tensorflow-datasets has them.
MNIST_DIRS = [
    pathlib.Path(p) for p in (
        os.environ.get("VAE_TF_MNIST_DIR"),
        pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist",
    ) if p
]
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
KERAS_HOME = pathlib.Path(os.environ.get("KERAS_HOME", pathlib.Path.home() / ".keras"))
KERAS_MNIST = KERAS_HOME / "datasets" / "mnist.npz"


def _mnist_missing(*elsewhere):
    """The skip reason: where MNIST was looked for, and how to provide it."""
    places = ", ".join(map(str, [*MNIST_DIRS, *elsewhere]))
    return (f"real MNIST digits not found ({places}): set VAE_TF_MNIST_DIR to a directory "
            f"holding the MNIST test set files {' and '.join(MNIST_FILES)}")


def _read_t10k(directory):
    from vae_tf.data import read_idx

    images = read_idx(directory / MNIST_FILES[0])[..., None].astype("float32") / 255.0
    return images, read_idx(directory / MNIST_FILES[1]).astype("int32")


def _find_mnist_dir():
    return next((d for d in MNIST_DIRS if all((d / name).is_file() for name in MNIST_FILES)), None)


def _cached_mnist():
    """The MNIST test set as uint8 (images, labels) from keras's or tfds's cache, or None."""
    if KERAS_MNIST.is_file():
        with np.load(KERAS_MNIST) as arrays:
            return arrays["x_test"], arrays["y_test"]
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist")
    if builder.is_prepared():
        test = tfds.as_numpy(builder.as_dataset(split="test", batch_size=-1, shuffle_files=False))
        return test["image"][..., 0], test["label"]
    return None


@pytest.fixture(scope="session")
def fashion_dir():
    """The directory of the Debian package's Fashion-MNIST IDX files (train and t10k)."""
    if not (FASHION_DIR / MNIST_FILES[0]).is_file():
        pytest.fail(f"Fashion-MNIST not found in {FASHION_DIR}: "
                    "apt-get update && apt-get install dataset-fashion-mnist (README, Tests)")
    return FASHION_DIR


@pytest.fixture(scope="session")
def small_dir(fashion_dir):
    """A directory holding Fashion-MNIST's 10,000 t10k images alone: 8,000 train and 2,000
    test once vae_tf carves them, for quick end-to-end runs."""
    return SMALL_DIR


@pytest.fixture(scope="session")
def tiny_data(small_dir):
    """`vae-tf` arguments that read `small_dir`."""
    return ["--dataset", "idx", "--data-dir", str(small_dir)]


@pytest.fixture(scope="session")
def tiny_settings():
    """`vae-tf train` arguments for a run of seconds, without the data: one epoch of a small MLP,
    with a validation split (not the default) for the commands that use one (calibrate)."""
    return ["--epochs", "1", "--hidden-units", "32", "--latent-dim", "2", "--iw-samples", "2",
            "--batch-size", "256", "--validation-fraction", "0.1", "--no-export"]


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tiny_settings):
    """`vae-tf train` arguments for a run of seconds on `small_dir`; add --out and --name
    (a later flag overrides one of these, e.g. --export or --latent-dim 3)."""
    return [*tiny_data, *tiny_settings]


@pytest.fixture(scope="session")
def small_config(small_dir):
    """`small_config(**changes)`: a validated RunConfig of a small run on `small_dir`, with
    `changes` given as in a flat config.json (e.g. model="ae", epochs=3, out=...); with a
    validation split of 10%, not the default."""
    from vae_tf.config import RunConfig

    settings = dict(dataset="idx", data_dir=str(small_dir), hidden_units=(16,), latent_dim=2,
                    iw_samples=2, batch_size=256, epochs=2, validation_fraction=0.1)
    return lambda **changes: RunConfig.from_dict({**settings, **changes})


@pytest.fixture(scope="session")
def real_images(fashion_dir):
    """The Fashion-MNIST test set: images float32 in [0, 1], (10000, 28, 28, 1); labels int32."""
    return _read_t10k(fashion_dir)


@pytest.fixture
def real_batch(real_images):
    """512 real Fashion-MNIST images and their labels."""
    images, labels = real_images
    return images[:512], labels[:512]


@pytest.fixture(scope="session")
def mnist_dir():
    """A directory holding the real MNIST t10k IDX files; the test skips without one."""
    directory = _find_mnist_dir()
    if directory is None:
        pytest.skip(_mnist_missing())
    return directory


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST test set, shaped like `real_images`: from IDX files, else from
    keras's or tensorflow-datasets' download cache; the test skips without any."""
    directory = _find_mnist_dir()
    if directory is not None:
        return _read_t10k(directory)
    cached = _cached_mnist()
    if cached is None:
        pytest.skip(_mnist_missing(KERAS_MNIST, "tensorflow-datasets' cache"))
    images, labels = cached
    return images[..., None].astype("float32") / 255.0, labels.astype("int32")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes; run with --runslow (or -m slow)")


def pytest_collection_modifyitems(config, items):
    """Deselects slow tests unless --runslow is given or a -m expression chooses."""
    if config.getoption("--runslow") or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


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
