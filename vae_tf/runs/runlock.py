"""One process owns a run: a lock file `OUT/.NAME.lock` holding the owner's PID and host.

The lock is created with O_CREAT|O_EXCL, so exactly one process gets it; a second
command on the same run is refused with one line naming the holder. A lock left by a
process that is gone (same host) is taken over with a logged notice. A lock held on
another host cannot be checked and is refused; delete it by hand if that run is dead.
"""

import contextlib
import logging
import os
import pathlib
import socket
import uuid

log = logging.getLogger(__name__)


class RunLocked(OSError):
    """Another live process owns the run."""


def lock_path(run_dir):
    """`OUT/.NAME.lock` for the run `OUT/NAME` or `OUT/NAME.partial` (one lock for both)."""
    run_dir = pathlib.Path(run_dir)
    return run_dir.with_name(f".{run_dir.name.removesuffix('.partial')}.lock")


def _holder(path):
    """(pid, host, text) of the lock at `path`, or None if there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    pid, host = (text.split() + ["0", "?"])[:2]
    return (int(pid) if pid.isdigit() else 0), host, text


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return pid > 0


def _refuse_if_held(path, holder):
    pid, host, _ = holder
    if host != socket.gethostname() or _alive(pid):
        raise RunLocked(f"{path.with_name(path.name[1:].removesuffix('.lock'))} is in use by process {pid} "
                        f"on {host} (lock {path}); wait for it, or delete the lock if that process is gone")


def check_unlocked(run_dir):
    """Raises RunLocked, writing nothing, if a live process owns the run at `run_dir`."""
    path = lock_path(run_dir)
    holder = _holder(path)
    if holder is not None:
        _refuse_if_held(path, holder)


def _take_over(path, stale_text):
    """Removes the stale lock `path` unless another process replaced it meanwhile."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if aside.read_text() == stale_text:
        aside.unlink()
        log.warning("took over the lock %s of a process that is gone (%s)", path, stale_text.strip())
    else:  # a fresh lock, moved by mistake: put it back unless someone locked since
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        aside.unlink()


@contextlib.contextmanager
def run_lock(run_dir):
    """Owns the run at `run_dir` (its `.partial` twin included) while the block runs.

    Args:
        run_dir: str or Path. `OUT/NAME` or `OUT/NAME.partial`; OUT must exist.

    Raises:
        RunLocked: a live process owns the run.

    Example:

    >>> with run_lock("runs/quick"):
    ...     pass  # write into runs/quick.partial
    """
    path = lock_path(run_dir)
    text = f"{os.getpid()} {socket.gethostname()} {uuid.uuid4().hex}\n"
    for _ in range(3):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None:
                _refuse_if_held(path, holder)
                _take_over(path, holder[2])
            continue
        with os.fdopen(descriptor, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        break
    else:
        raise RunLocked(f"could not take the lock {path}: other processes keep taking it")
    try:
        yield path
    finally:
        if _holder(path) and _holder(path)[2] == text:
            path.unlink()
