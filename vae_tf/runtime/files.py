"""Temporary files and directories for atomic writes, with the modes a plain write gives.

`tempfile` creates files 0600 and directories 0700 whatever the umask, so a run, a
fitted sampler or a SavedModel version renamed into place from one would be readable by
its owner alone, and a serving process running as another user could not load it.
"""

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
