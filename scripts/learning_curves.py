"""Test -log p(x) against passes for runs trained with --curve-iw-samples, on one plot,
with the IWAE paper's figures as dashed lines; prints each run's last point and final
metrics (docs/guides/literature.md).

Usage: python scripts/learning_curves.py RUN_DIR [RUN_DIR ...] --out curves.png
"""

import argparse
import json
import pathlib

from vae_tf.analysis import plots
from vae_tf.runs.run import read_curve

# Burda, Grosse & Salakhutdinov (2016), Table 1, MNIST, one stochastic layer, k = 1 and 5.
PAPER = {"IWAE paper: VAE, k = 1": 86.76, "IWAE paper: IWAE, k = 5": 85.54}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path, help="run directories")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="the PNG to write")
    args = parser.parse_args()
    curves = {}
    for run_dir in args.runs:
        curve = read_curve(run_dir)
        if curve is None:
            parser.error(f"{run_dir}: no curve.csv (train with --curve-iw-samples K)")
        epochs, nats, samples = curve
        curves[f"{run_dir.name} (K = {samples})"] = (epochs, nats)
        final = run_dir / "metrics.json"
        last = f"{nats[-1]:.2f} nats after {epochs[-1]} passes (K = {samples})"
        if final.is_file():
            metrics = json.loads(final.read_text())
            last += f"; final: {-metrics['iw_log_likelihood']:.2f} nats (K = {metrics['iw_samples']})"
        print(f"{run_dir.name}: {last}")
    plots.save_figure(plots.learning_curves(curves, PAPER), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
