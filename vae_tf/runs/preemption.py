"""Preemption: SIGTERM or Ctrl-C during training becomes a checkpoint and a clean stop.

Cloud VMs and Kubernetes send SIGTERM some seconds before SIGKILL. While `stop_requests`
is active, the first SIGTERM or SIGINT only sets a flag; `VerifiedBackup` sees it at the
end of the running execution of training steps, saves a step-level checkpoint and raises
`Preempted`. The same command then resumes within the epoch. A second Ctrl-C interrupts
at once, as Ctrl-C does elsewhere.
"""

import contextlib
import logging
import signal
import threading

log = logging.getLogger(__name__)

# The exit status of a preempted command: EX_TEMPFAIL of sysexits.h, "try again later".
PREEMPTED_STATUS = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint it resumes from.

    Args:
        signal_name: str. "SIGTERM" or "SIGINT".
        epoch: int. Epochs completed.
        step: int. Steps of the next epoch completed.
        checkpoint_dir: str or Path, or None on a worker that is not the chief (whose own
            checkpoint is temporary: the chief's counts).
    """

    def __init__(self, signal_name, epoch, step, checkpoint_dir):
        where = f"epoch {epoch}" if not step else f"step {step} of epoch {epoch + 1}"
        if checkpoint_dir is None:
            message = (f"stopped by {signal_name} after {where}: the chief saved the checkpoint; "
                       "start every worker again with the same command to resume")
        else:
            message = (f"stopped by {signal_name}: checkpoint saved after {where} in {checkpoint_dir}; "
                       "run the same command to resume")
        super().__init__(message)
        self.signal_name, self.epoch, self.step = signal_name, epoch, step


class StopRequest:
    """Whether a stop was asked for, and by which signal (set by `stop_requests`)."""

    def __init__(self):
        self._event = threading.Event()
        self.signal_name = None

    def set(self, signal_name):
        self.signal_name = signal_name
        self._event.set()

    def is_set(self):
        return self._event.is_set()


@contextlib.contextmanager
def stop_requests():
    """Within the block, SIGTERM and SIGINT set the yielded `StopRequest` instead of
    ending the process; the previous handlers come back after it.

    Outside the main thread, where Python cannot install handlers, the request is
    never set and signals act as before; so do signals the process ignores.

    Example:

    >>> with stop_requests() as stop:
    ...     model.fit(data, callbacks=[VerifiedBackup("backup", stop=stop)])
    """
    request = StopRequest()

    def handle(signum, frame):
        name = signal.Signals(signum).name
        if request.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait
        log.warning("%s received: saving a checkpoint after the current training steps", name)
        request.set(name)

    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    # A signal the process ignores (SIGINT for a job started with `&` by a script) stays ignored.
    previous = {s: signal.signal(s, handle) for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
