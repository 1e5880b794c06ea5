"""How long `vae-tf train` takes to stop after SIGTERM: time from the signal to the
process's exit (checkpoint written), for the training options given; prints one line per
trial and the worst (docs/guides/faults-security.md).

Usage: python scripts/preemption_latency.py --trials 3 -- TRAIN_OPTIONS...
(TRAIN_OPTIONS: as for `vae-tf train`, without --out and --name.)
"""

import argparse
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

from vae_tf.runs.checkpoints import newest_whole
from vae_tf.runs.preemption import PREEMPTED_STATUS


def stop_once(options, out, name, wait_s):
    """Starts a run, sends SIGTERM `wait_s` seconds into its second epoch; returns
    (seconds to exit, where the checkpoint is)."""
    process = subprocess.Popen([sys.executable, "-m", "vae_tf", "train", *options, "--out", str(out),
                                "--name", name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    backup = out / f"{name}.partial" / "backup"
    while (found := _checkpoint(backup)) is None or found.epoch < 1:
        if process.poll() is not None:
            sys.exit(f"the run ended before its first epoch did: {process.stderr.read()[-2000:]}")
        time.sleep(0.02)
    time.sleep(wait_s)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate()[1]
    elapsed = time.monotonic() - sent
    if process.returncode != PREEMPTED_STATUS:
        sys.exit(f"exit status {process.returncode}, not {PREEMPTED_STATUS}: {stderr[-2000:]}")
    found = newest_whole(backup)
    where = f"step {found.step} of epoch {found.epoch + 1}" if found.step else f"the end of epoch {found.epoch}"
    return elapsed, where


def _checkpoint(backup):
    try:
        return newest_whole(backup)
    except OSError:  # being written
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="runs to stop (default: 3)")
    parser.add_argument("--wait", type=float, default=2.0,
                        help="seconds into the second epoch to send SIGTERM (default: 2)")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="-- then `vae-tf train` options")
    args = parser.parse_args()
    options = args.options[1:] if args.options[:1] == ["--"] else args.options
    with tempfile.TemporaryDirectory() as out:
        times = []
        for trial in range(args.trials):
            elapsed, where = stop_once(options, pathlib.Path(out), f"trial{trial}", args.wait)
            times.append(elapsed)
            print(f"trial {trial + 1}: exited {elapsed:.2f} s after SIGTERM, checkpoint after {where}")
    print(f"worst of {args.trials}: {max(times):.2f} s")


if __name__ == "__main__":
    main()
