"""The `vae-tf` command line: argument parsing and dispatch; the work is in the library.

One module per command group (`train`, `run_commands`: evaluate/export/plot, `sampling`:
fit-sampler/sample/train-prior, `encode`, `anomaly`: score/calibrate/ood,
`disentanglement`, `benchmark`); each command parses its arguments and calls one function
of `vae_tf.runs` (or `vae_tf.benchmarks`) that a Python user can call too, then prints
what it did. `vae-tf train`'s options are generated from the fields of
`vae_tf.config.RunConfig` (help, defaults and choices come from there). Installed as the
`vae-tf` console script (`console_main`) and runnable as `python -m vae_tf`.
"""

from vae_tf.cli.main import build_parser, console_main, main

__all__ = ["build_parser", "console_main", "main"]
