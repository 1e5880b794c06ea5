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


def test_reads_the_real_mnist_test_set(mnist):
    images, labels = mnist
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
