"""The `vae-tf` parser, assembled from the command groups, and the entry points."""

import argparse
import errno
import importlib.metadata
import logging
import sys

from vae_tf.cli import anomaly, benchmark, disentanglement, encode, quality, run_commands, sampling, study, train
from vae_tf.runs.preemption import PREEMPTED_STATUS, Preempted

log = logging.getLogger("vae_tf")

# Each adds one command (in --help's order), whose `handler` runs it.
COMMANDS = (
    train.add_train,
    run_commands.add_evaluate,
    run_commands.add_export,
    sampling.add_fit_sampler,
    sampling.add_sample,
    quality.add_sample_quality,
    encode.add_encode,
    anomaly.add_score,
    anomaly.add_calibrate,
    anomaly.add_ood,
    sampling.add_train_prior,
    run_commands.add_plot,
    disentanglement.add_disentanglement,
    study.add_study,
    benchmark.add_benchmark,
)


def _version():
    try:
        return importlib.metadata.version("vae_tf")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        import vae_tf

        return vae_tf.__version__


def build_parser():
    """The argparse parser of `vae-tf` and all its commands."""
    parser = argparse.ArgumentParser(
        prog="vae-tf", description="Train and use autoencoders, VAEs and conditional VAEs."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def main(argv=None):
    """Runs one `vae-tf` command; returns the exit status: 2 on a bad argument or input,
    75 when SIGTERM or Ctrl-C stopped training after a checkpoint (rerun to resume), 130
    on an interrupt anywhere else.

    Args:
        argv: list of str or None. The arguments after `vae-tf`; None reads sys.argv.

    Example:

    >>> main(["train", "--epochs", "1", "--name", "quick"])
    0
    """
    import tensorflow as tf

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    tf.get_logger().setLevel(logging.ERROR)
    stdout = sys.stdout = LineTracking(sys.stdout)
    try:
        args.handler(args)
    except Preempted as stopped:
        stdout.end_line()
        print(f"vae-tf: {stopped}", file=sys.stderr)
        return PREEMPTED_STATUS
    except (ValueError, OSError, RuntimeError, tf.errors.OpError) as error:
        message = error.message if isinstance(error, tf.errors.OpError) else str(error)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            message = f"no space left on device while writing {error.filename}"
        stdout.end_line()
        print(f"vae-tf: error: {message.splitlines()[0] if message else type(error).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        stdout.end_line()
        print("vae-tf: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout.stream
    return 0


class LineTracking:
    """A stream that remembers whether its last write left a line open (a progress bar
    drawn with carriage returns), so that an error message starts on a line of its own."""

    def __init__(self, stream):
        self.stream = stream
        self.line_open = False

    def write(self, text):
        if text:
            self.line_open = not text.endswith("\n")
        return self.stream.write(text)

    def end_line(self):
        if self.line_open:
            self.write("\n")
            self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def console_main():
    """The `vae-tf` console script (and `python -m vae_tf`): exits with `main`'s status.

    TensorFlow's start-up output is held back by `vae_tf._startup`, which runs when the
    package is imported by this command."""
    sys.exit(main())
