"""A run directory: where a run may live, and its atomic replacement.

A run lives at `OUT/NAME/` and is built in `OUT/NAME.partial/`. Names are one path
component (`check_name`), so a run never lands outside the `OUT` the user named, and
only a directory carrying the run marker (a `config.json` that reads as a vae_tf
configuration) is ever replaced or deleted.
"""

import os
import pathlib
import shutil

from vae_tf.config import read_config
from vae_tf.names import check_name


def _check_inside(path, root):
    """Raises unless `path` (a symlink counts as outside) resolves strictly inside `root`."""
    root = pathlib.Path(root).resolve()
    resolved = pathlib.Path(path).resolve()
    if pathlib.Path(path).is_symlink():
        raise ValueError(f"{path} is a symbolic link; vae_tf does not replace or write through links")
    if resolved == root or not resolved.is_relative_to(root):
        raise ValueError(f"{path} resolves to {resolved}, outside {root}")


def run_path(out, name):
    """`OUT/NAME` after checking the name and that the path lies inside `OUT`.

    Args:
        out: str or Path. The runs root.
        name: str. The run name (`check_name`).

    Returns:
        The Path `out/name` (not resolved).
    """
    path = pathlib.Path(out) / check_name(name)
    _check_inside(path, out)
    return path


def is_run(path):
    """Whether `path` is a vae_tf run: a real directory whose config.json reads as one."""
    path = pathlib.Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        read_config(path)
    except (OSError, ValueError):
        return False
    return True


def check_replaceable(path, root):
    """Raises unless `path`, inside `root`, is a vae_tf run that may be deleted."""
    _check_inside(path, root)
    if not is_run(path):
        raise ValueError(f"{path} is not a vae_tf run (no vae_tf config.json); remove it yourself")


def remove_run(path, root):
    """Deletes the run at `path` after checking, at this moment, that it is one inside `root`."""
    check_replaceable(path, root)
    shutil.rmtree(path)


def _aside(final):
    """Where the old run waits while a new one replaces it (hidden: no run can take the name)."""
    return final.with_name(f".{final.name}.replaced")


def recover(final):
    """Completes or undoes a replacement that was killed midway.

    A kill after the old run moved aside leaves no `final`: the old run is put back.
    A kill after the new run moved in leaves the old one aside: it is deleted.
    """
    final = pathlib.Path(final)
    aside = _aside(final)
    if not aside.exists():
        return
    if final.exists():
        remove_run(aside, final.parent)
    else:
        check_replaceable(aside, final.parent)
        os.rename(aside, final)


def replace_run(partial, final):
    """Moves the finished run `partial` to `final`, replacing a run already there.

    The old run is renamed aside, the new one renamed in, then the old one deleted:
    a crash at any point leaves a whole run (`recover` tidies up after a kill).

    Args:
        partial: Path. The finished run, beside `final`.
        final: Path. Where the run goes.
    """
    partial, final = pathlib.Path(partial), pathlib.Path(final)
    root = final.parent
    recover(final)
    if not (final.exists() or final.is_symlink()):
        os.rename(partial, final)
        return
    check_replaceable(final, root)  # again: the directory may have changed since training began
    aside = _aside(final)
    os.rename(final, aside)
    try:
        os.rename(partial, final)
    except BaseException:
        os.rename(aside, final)
        raise
    remove_run(aside, root)
