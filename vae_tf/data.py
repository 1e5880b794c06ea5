"""Reading data: IDX files (the MNIST format) into numpy arrays."""

import gzip
import pathlib

import numpy as np

# IDX magic numbers: 0x0000 0803 for 3-D uint8 images, 0x0000 0801 for 1-D uint8 labels.
_IDX_UINT8 = 0x08


def read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) of unsigned bytes.

    Args:
        path: str or Path. A `*-idx3-ubyte` (images) or `*-idx1-ubyte` (labels) file,
            with or without `.gz`.

    Returns:
        A uint8 numpy array shaped as the file's header says.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, for a corrupt or truncated file or a bad header.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such IDX file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: cannot be read ({error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UINT8 or raw[3] < 1:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    rank = raw[3]
    header = 4 + 4 * rank
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({expected} bytes) but the file "
            f"has {len(raw)} bytes (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
