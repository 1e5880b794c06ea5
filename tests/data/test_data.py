import gzip

import numpy as np
import pytest

from vae_tf.data import read_idx


def write_idx(path, array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(
        d.to_bytes(4, "big") for d in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.mark.parametrize("fixture", ["real_images", "mnist"])  # mnist skips without the files
def test_reads_a_real_t10k_test_set(fixture, request):
    images, labels = request.getfixturevalue(fixture)
    assert images.shape == (10000, 28, 28, 1) and labels.shape == (10000,)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(labels)) == set(range(10))


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_round_trips_plain_and_gzip_files(tmp_path, name):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_bad_files_raise_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing-idx1-ubyte"):
        read_idx(tmp_path / "missing-idx1-ubyte")
    wrong_magic = tmp_path / "magic-idx1-ubyte"
    write_idx(wrong_magic, np.zeros(3), magic_type=0x0D)
    with pytest.raises(ValueError, match="magic-idx1-ubyte.*magic number"):
        read_idx(wrong_magic)
    truncated = tmp_path / "short-idx3-ubyte"
    write_idx(truncated, np.zeros((2, 2, 2)))
    truncated.write_bytes(truncated.read_bytes()[:-3])
    with pytest.raises(ValueError, match="short-idx3-ubyte.*truncated"):
        read_idx(truncated)
    corrupt = tmp_path / "corrupt-idx3-ubyte.gz"
    write_idx(corrupt, np.zeros((2, 2, 2)))
    corrupt.write_bytes(corrupt.read_bytes()[:-6])
    with pytest.raises(ValueError, match="corrupt-idx3-ubyte.gz.*cannot be read"):
        read_idx(corrupt)


# --- load_data: every source -----------------------------------------------------

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from PIL import Image  # noqa: E402

from vae_tf.data import DEBIAN_FASHION_MNIST, load_data, training_pipelines  # noqa: E402


def count(dataset):
    return sum(int(x.shape[0]) for x, _ in dataset)


def test_t10k_only_idx_directory_is_carved_deterministically(small_dir):
    splits = load_data("fashion_mnist", data_dir=small_dir, batch_size=500, validation_fraction=0.1)
    assert splits.image_shape == (28, 28, 1) and splits.num_classes == 10
    assert (count(splits.train), count(splits.validation), count(splits.test)) == (7200, 800, 2000)
    again = load_data("idx", data_dir=small_dir, batch_size=500)
    assert again.validation is None and count(again.train) == 8000  # by default nothing is held out
    first = lambda s: next(iter(s.test))[1].numpy()  # noqa: E731
    np.testing.assert_array_equal(first(splits), first(again))
    x, y = next(iter(splits.train))
    assert x.dtype == tf.float32 and y.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0


def test_fashion_mnist_default_reads_the_debian_package():
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail("install the Debian package dataset-fashion-mnist (.ci/run does)")
    splits = load_data(batch_size=1000, validation_fraction=0.1)
    assert "fashion-mnist" in splits.source
    assert (count(splits.train), count(splits.validation), count(splits.test)) == (54000, 6000, 10000)
    assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"


def test_idx_files_have_class_names_only_when_known_to_be_fashion_mnist(small_dir):
    assert load_data("idx", data_dir=small_dir).class_names is None  # numbers stay numbers
    named = load_data("fashion_mnist", data_dir=small_dir).class_names
    assert named == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def test_tfds_source_with_mock_data():
    with tfds.testing.mock_data(num_examples=20):
        splits = load_data("mnist", batch_size=8)
        x, y = next(iter(splits.train))
        assert splits.image_shape == (28, 28, 1) and splits.num_classes == 10
        assert x.shape == (8, 28, 28, 1) and y.dtype == tf.int32
        resized = load_data("cifar10", batch_size=4, image_size=(8, 8))
        assert next(iter(resized.test))[0].shape == (4, 8, 8, 3)


def test_tfds_source_carries_the_label_names():
    with tfds.testing.mock_data(num_examples=8):
        splits = load_data("rock_paper_scissors", batch_size=4, image_size=(8, 8))
    assert splits.num_classes == 3 and splits.class_names == ("rock", "paper", "scissors")


def make_folder(root, classes=("cat", "dog"), per_class=5, size=(12, 10)):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_image_folder_streams_resized_rgb_with_labels(tmp_path):
    root = make_folder(tmp_path / "images")
    splits = load_data("folder", data_dir=root, image_size=(8, 6), batch_size=4, validation_fraction=0.25)
    assert splits.image_shape == (8, 6, 3) and splits.num_classes == 2
    assert count(splits.train) + count(splits.validation) + count(splits.test) == 10
    labels = np.concatenate([y.numpy() for _, y in splits.train])
    assert set(labels) <= {0, 1}
    grey = load_data("folder", data_dir=root, image_size=(8, 6), color_mode="grayscale")
    assert next(iter(grey.train))[0].shape[-1] == 1
    assert splits.class_names == ("cat", "dog")  # sub-folder names, in label order


def test_image_folder_without_sub_folders_has_no_labels_or_names(tmp_path):
    make_folder(tmp_path / "images", classes=("only",))
    flat = tmp_path / "images" / "only"
    splits = load_data("folder", data_dir=flat, image_size=(8, 6))
    assert splits.num_classes is None and splits.class_names is None


def test_binarization_static_and_dynamic(small_dir):
    static = load_data("idx", data_dir=small_dir, batch_size=256, binarize="static")
    assert set(np.unique(next(iter(static.train))[0].numpy())) <= {0.0, 1.0}
    dynamic = load_data("idx", data_dir=small_dir, batch_size=256, binarize="dynamic",
                        validation_fraction=0.0)
    test_a, test_b = (next(iter(dynamic.test))[0].numpy() for _ in range(2))
    np.testing.assert_array_equal(test_a, test_b)  # held-out data: one fixed draw
    assert set(np.unique(test_a)) <= {0.0, 1.0}
    # Training data: a fresh draw per epoch (compare the same images via sorted means).
    epoch_a = np.concatenate([x.numpy().reshape(len(x), -1) for x, _ in dynamic.train])
    epoch_b = np.concatenate([x.numpy().reshape(len(x), -1) for x, _ in dynamic.train])
    assert not np.array_equal(np.sort(epoch_a.sum(1)), np.sort(epoch_b.sum(1)))


def test_epoch_k_depends_only_on_the_seed_and_k(small_dir):
    def load(seed=3):
        return load_data("idx", data_dir=small_dir, batch_size=500, binarize="dynamic", seed=seed,
                         validation_fraction=0.1)

    def batches(dataset):
        return [(x.numpy(), y.numpy()) for x, y in dataset]

    data = load()
    epoch_2 = batches(data.epoch(2))
    assert [len(y) for _, y in epoch_2][-2:] == [500, 200]  # 7200 digits, the last batch partial
    for (x, y), (x_again, y_again) in zip(epoch_2, batches(load().epoch(2)), strict=True):
        np.testing.assert_array_equal(x, x_again)  # same order and Bernoulli draws
        np.testing.assert_array_equal(y, y_again)
    assert not np.array_equal(epoch_2[0][1], batches(data.epoch(3))[0][1])  # reshuffled
    assert not np.array_equal(epoch_2[0][1], batches(load(seed=4).epoch(2))[0][1])


@pytest.mark.parametrize("binarize", ["none", "static", "dynamic"])
def test_indexed_epochs_give_the_batches_of_the_shuffled_elements(binarize):
    """`indexed_epoch(k)` names by shuffled index the batches that `epoch(k)` shuffles
    the elements into: the same batches, with more elements than the 10,000-element
    shuffle buffer; its examples are the prepared (statically binarized) ones, and a
    dynamic binarization's per-batch draws are the same too."""
    images = np.random.default_rng(0).random((10_500, 2, 2, 1), dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(10_500, dtype="int32")))
    _, epoch, indexed_epoch = training_pipelines(dataset, 1000, binarize, seed=7, cache=True, in_memory=True)
    assert (indexed_epoch(0).keys is not None) == (binarize == "dynamic")

    def batches(dataset):
        return [(x.numpy(), y.numpy()) for x, y in dataset]

    for index in (0, 3):
        got, want = batches(indexed_epoch(index).dataset()), batches(epoch(index))
        assert [len(y) for _, y in got] == [1000] * 10 + [500]
        for (x, y), (x_want, y_want) in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, x_want)
            np.testing.assert_array_equal(y, y_want)
    assert not np.array_equal(batches(epoch(0))[0][1], batches(epoch(3))[0][1])  # reshuffled
    assert indexed_epoch(0).examples is indexed_epoch(3).examples  # gathered into tensors once


def test_load_data_offers_indexed_epochs_for_sources_in_memory(small_dir, tmp_path):
    idx = load_data("idx", data_dir=small_dir, batch_size=500, seed=3, validation_fraction=0.1)
    indexed = idx.indexed_epoch(2)
    assert [t.shape[0] for t in indexed.examples] == [7200, 7200]
    assert int(indexed.indices.cardinality()) == int(idx.epoch(2).cardinality()) == 15
    assert load_data("idx", data_dir=small_dir, binarize="dynamic").indexed_epoch(0).keys is not None
    make_folder(tmp_path / "folder")
    assert load_data("folder", data_dir=tmp_path / "folder", image_size=(8, 8), cache=1).indexed_epoch is None


def test_pipelines_read_ahead_without_tf_data_autotuning(small_dir):
    """Autotuning's thread made deleting an iterator, at the end of every `fit`, wait up
    to seconds (README, Performance): every pipeline that `load_data` builds is without it."""
    data = load_data("idx", data_dir=small_dir, batch_size=500, seed=3, validation_fraction=0.1)
    pipelines = {"train": data.train, "validation": data.validation, "test": data.test,
                 "epoch": data.epoch(1), "indexed": data.indexed_epoch(1).dataset()}
    assert {name: d.options().autotune.enabled for name, d in pipelines.items()} == dict.fromkeys(pipelines, False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataset": "idx", "data_dir": "/nonexistent/dir"}, "/nonexistent/dir: no such directory"),
        ({"dataset": "folder", "data_dir": "/nonexistent/dir", "image_size": (8, 8)}, "no such directory"),
        ({"dataset": "no_such_data_set"}, "unknown data set 'no_such_data_set'"),
        ({"dataset": "idx"}, "needs --data-dir"),
        ({"dataset": "idx", "data_dir": "SMALL_DIR", "num_classes": 5}, r"labels go up to 9 .* \[0, 5\)"),
        ({"dataset": "idx", "data_dir": "SMALL_DIR", "binarize": "sometimes"}, "binarize"),
        ({"dataset": "idx", "data_dir": "SMALL_DIR", "validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_requests_name_the_problem(kwargs, message, small_dir):
    kwargs = {key: small_dir if value == "SMALL_DIR" else value for key, value in kwargs.items()}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_data(**kwargs)


def test_idx_directory_with_mismatched_counts_names_both_files(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 4, 4)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4))
    with pytest.raises(ValueError, match="5 images but .*t10k-labels-idx1-ubyte has 4 labels"):
        load_data("idx", data_dir=tmp_path)


def test_image_folder_with_an_unreadable_file_names_it(tmp_path):
    root = make_folder(tmp_path / "images")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="broken.png: unreadable image"):
        load_data("folder", data_dir=root, image_size=(8, 8))
    with pytest.raises(ValueError, match="needs --image-size"):
        load_data("folder", data_dir=root)
