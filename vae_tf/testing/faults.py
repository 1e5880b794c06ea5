"""Test-only fault injection: a process killed, as by a power cut, at a named point.

The fault-injection tests (tests/runs/test_faults_kill.py, test_multi_worker.py) start
real `vae-tf` processes, one with `VAE_TF_TEST_KILL=POINT:N` in its environment; it
SIGKILLs itself the N-th time it reaches `kill_point(POINT)`. Points: "checkpoint-write"
(half of a backup's weights file written), "checkpoint" (a backup half renamed in),
"train-batch" (a training batch done, counted over the process's life, before a
checkpoint due at it) and "export" (a SavedModel version written, not yet renamed into
place). Without the variable, `kill_point` does nothing.
"""

import os
import signal

_reached = {}


def kill_point(name):
    """SIGKILLs this process at its N-th arrival here when `VAE_TF_TEST_KILL` is `name:N`."""
    point, _, count = os.environ.get("VAE_TF_TEST_KILL", "").partition(":")
    if point == name:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] == int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)
