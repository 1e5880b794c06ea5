"""Files written through temporaries get the modes a plain write gives (not tempfile's 0600)."""

import os
import stat

import pytest

from vae_tf.runtime.files import temporary_directory, temporary_file
from vae_tf.runtime.files import write_json


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_temporaries_follow_the_umask(tmp_path, umask_022):
    assert mode(temporary_file(tmp_path, prefix=".x.")) == 0o644
    assert mode(temporary_directory(tmp_path, prefix=".d.")) == 0o755
    os.umask(0o077)
    assert mode(temporary_file(tmp_path, prefix=".y.")) == 0o600


def test_run_files_are_readable_by_others(tmp_path, umask_022):
    """A serving process or a colleague under another user id must be able to read them."""
    path = write_json(tmp_path / "metrics.json", {"loss": 1.0})
    assert mode(path) == 0o644
    assert not list(tmp_path.glob(".metrics.json.*"))  # the temporary is gone
