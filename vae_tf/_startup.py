"""Quiet start-up for the `vae-tf` command (console script, `python -m vae_tf` or
`python -m vae_tf.cli`).

TensorFlow writes start-up messages ("Could not find cuda drivers", CPU feature notes)
straight to file descriptor 2 while it is imported and discovers devices, whatever
TF_CPP_MIN_LOG_LEVEL says. For the command only, they are held back and shown only if
the import fails; a library user's process is left as it is.
"""

import os
import pathlib
import sys
import tempfile


def is_command():
    """Whether this process is the `vae-tf` command rather than a library user."""
    return (pathlib.Path(sys.argv[0]).name == "vae-tf"
            or sys.orig_argv[1:3] in (["-m", "vae_tf"], ["-m", "vae_tf.cli"]))


def import_tensorflow_quietly():
    """Imports TensorFlow and lists its devices with file descriptor 2 held back."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery writes too
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
