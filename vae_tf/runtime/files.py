"""Atomic writes (JSON, CSV, any file), a full disk named, and the temporary files and
directories they use, with the modes a plain write gives.

`tempfile` creates files 0600 and directories 0700 whatever the umask, so a run, a
fitted sampler or a SavedModel version renamed into place from one would be readable by
its owner alone, and a serving process running as another user could not load it.
"""

import contextlib
import csv
import errno
import json
import os
import pathlib
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_file(directory, prefix, suffix=""):
    """Creates an empty file in `directory`, mode 0666 less the umask; returns its Path."""
    descriptor, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    os.close(descriptor)
    os.chmod(name, 0o666 & ~_umask())
    return pathlib.Path(name)


def temporary_directory(directory, prefix):
    """Creates an empty directory in `directory`, mode 0777 less the umask; returns its Path."""
    name = tempfile.mkdtemp(dir=directory, prefix=prefix)
    os.chmod(name, 0o777 & ~_umask())
    return pathlib.Path(name)


def fsync_file(path):
    """Flushes a written file's contents to the disk (before its rename, so a power cut
    after the rename cannot leave the new name on an empty file)."""
    with open(path, "r+b") as f:  # writable: Windows fsyncs only such handles
        os.fsync(f.fileno())


def atomic_write(path, write):
    """Calls `write(temporary path)` beside `path` and renames the result to `path` only
    if it succeeds, so `path` is never half-written.

    Args:
        path: str or Path. The file to write; its directory must exist.
        write: callable taking the temporary Path.

    Returns:
        `path` as a Path.
    """
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: output directory does not exist")
    temporary = temporary_file(path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        with writing(path):
            write(temporary)
            fsync_file(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def writing(path):
    """Reports a full disk met inside the block as `OSError(ENOSPC)` naming `path`
    (TensorFlow reports one as a ResourceExhaustedError saying "No space left on device")."""
    try:
        yield
    except Exception as error:
        full = getattr(error, "errno", None) == errno.ENOSPC or os.strerror(errno.ENOSPC) in str(error)
        if not full:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error


def write_json(path, payload):
    """Writes `payload` as indented JSON, atomically; returns the Path."""
    def write(temporary):
        temporary.write_text(json.dumps(payload, indent=2) + "\n")
    return atomic_write(path, write)


def write_csv(path, header, rows):
    """Writes a CSV file (a header row, then `rows`), atomically; returns the Path."""
    def write(temporary):
        with open(temporary, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
    return atomic_write(path, write)
