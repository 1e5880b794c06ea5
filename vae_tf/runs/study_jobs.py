"""The processes of a study: each task's commands in turn, up to `jobs` tasks at once.

A task is one run of the grid: its commands (`python -m vae_tf train ...`, then
`... disentanglement ...`) run as child processes, one after the other, their output appended to
the task's log. A command that fails ends its task as "failed"; the other tasks go on.
SIGTERM or Ctrl-C (`vae_tf.runs.preemption.stop_requests`) starts no new command and
sends SIGTERM to the running ones, which save a checkpoint and exit with status 75; a
second Ctrl-C sends them SIGINT, which stops them at once. Children run in sessions of
their own, so a Ctrl-C in the terminal reaches them only through this relay.
"""

import dataclasses
import os
import pathlib
import shlex
import signal
import subprocess
import time

from vae_tf.runs.preemption import PREEMPTED_STATUS, stop_requests

POLL_SECONDS = 0.2


@dataclasses.dataclass
class Task:
    """One run's commands and what became of them.

    Args:
        name: str. The run's name.
        commands: list of (step name, argv), run in order.
        log: Path. The file their output is appended to.
        status: str. "pending", "running", "finished", "failed" or "stopped".
        step: str or None. The step running, or the one that failed or stopped.
        exit_code: int or None. The failed or stopped command's exit status.
        seconds: dict. Wall-clock seconds of each step that ran to its end.
        number: int. Its place in the order the tasks started (0: not started).
    """

    name: str
    commands: list
    log: pathlib.Path
    status: str = "pending"
    step: str | None = None
    exit_code: int | None = None
    seconds: dict = dataclasses.field(default_factory=dict)
    number: int = 0


def child_environment():
    """The environment of a child: this one, with this `vae_tf` first on the path, so
    children run the same code whatever their working directory."""
    root = str(pathlib.Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else os.pathsep.join([root, path])}


class _Running:
    def __init__(self, task, cwd):
        self.task, self.cwd, self.next = task, cwd, 0
        self.process = None

    def start_next(self):
        step, argv = self.task.commands[self.next]
        self.next += 1
        self.task.status, self.task.step, self.started = "running", step, time.monotonic()
        with open(self.task.log, "a") as log:
            log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n")
            log.flush()
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                            env=child_environment(), start_new_session=True)


def run_tasks(tasks, jobs, cwd, report):
    """Runs `tasks` (their statuses updated in place), at most `jobs` at a time.

    Args:
        tasks: list of `Task` with at least one command.
        jobs: int. Tasks running at once, >= 1.
        cwd: Path. The children's working directory.
        report: callable. `report(event, task)` after "started", "finished", "failed"
            and "stopped".

    Returns:
        The name of the signal that stopped the study ("SIGTERM", "SIGINT"), or None.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    waiting, running, relayed = list(tasks), [], None
    with stop_requests() as stop:
        while running or (waiting and not stop.is_set()):
            try:
                if stop.is_set() and relayed is None:
                    relayed = _relay(running, signal.SIGTERM)
                while waiting and len(running) < jobs and not stop.is_set():
                    run = _Running(waiting.pop(0), cwd)
                    run.start_next()
                    running.append(run)
                    report("started", run.task)
                running = [run for run in running if not _step_done(run, stop, report)]
                time.sleep(POLL_SECONDS)
            except KeyboardInterrupt:  # a second Ctrl-C: the children stop at once too
                relayed = _relay(running, signal.SIGINT)
    return stop.signal_name if stop.is_set() else None


def _relay(running, signum):
    for run in running:
        if run.process.poll() is None:
            run.process.send_signal(signum)
    return signum


def _step_done(run, stop, report):
    """Whether `run`'s task is over, after starting its next command if one is due."""
    code = run.process.poll()
    if code is None:
        return False
    task = run.task
    if code == 0:
        task.seconds[task.step] = round(time.monotonic() - run.started, 1)
        if run.next < len(task.commands) and not stop.is_set():
            run.start_next()
            return False
        task.status = "finished" if run.next == len(task.commands) else "stopped"
    else:
        task.status = "stopped" if code == PREEMPTED_STATUS or stop.is_set() else "failed"
        task.exit_code = code
    report(task.status, task)
    return True
