"""The `vae-tf` command line: argument parsing only; the work is in the library.

The installed `vae-tf` command is scripts/vae-tf, which quiets TensorFlow's start-up
and calls `main`."""

import argparse
import csv
import logging
import os
import pathlib
import sys

log = logging.getLogger("vae_tf")

def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _add_train_arguments(parser):
    from vae_tf.config import TrainConfig
    from vae_tf.distribute import STRATEGIES

    d = TrainConfig()
    add = parser.add_argument
    add("--model", choices=["ae", "vae", "cvae"], default=d.model, help="model kind")
    add("--arch", choices=["mlp", "conv"], default=d.arch, help="encoder/decoder architecture")
    add("--dataset", default=d.dataset,
        help="tensorflow-datasets name, 'idx' (IDX files in --data-dir) or 'folder' "
             "(images in --data-dir); fashion_mnist reads the Debian package when installed")
    add("--data-dir", default=None, help="directory of IDX files, images, or tfds data")
    add("--image-size", type=_positive_int, nargs=2, metavar=("H", "W"), default=None,
        help="resize images (required for --dataset folder)")
    add("--color-mode", choices=["rgb", "grayscale"], default=d.color_mode,
        help="channels for --dataset folder")
    add("--latent-dim", type=_positive_int, default=d.latent_dim)
    add("--hidden-units", type=_positive_int, nargs="+", default=list(d.hidden_units),
        help="MLP hidden layer widths")
    add("--filters", type=_positive_int, nargs="+", default=list(d.filters),
        help="conv encoder filters (the decoder mirrors them)")
    add("--likelihood", choices=["bernoulli", "gaussian"], default=d.likelihood)
    add("--sigma", type=float, default=None, help="Gaussian sigma (default 1.0)")
    add("--learn-sigma", action="store_true", help="learn the Gaussian sigma")
    add("--beta", type=float, default=d.beta, help="KL weight")
    add("--kl-warmup-epochs", type=int, default=d.kl_warmup_epochs,
        help="linear KL warm-up from 0 to --beta over this many epochs")
    add("--free-bits", type=float, default=d.free_bits, help="per-dimension KL floor, nats")
    add("--binarize", choices=["none", "static", "dynamic"], default=d.binarize)
    add("--validation-fraction", type=float, default=d.validation_fraction)
    add("--epochs", type=_positive_int, default=d.epochs)
    add("--batch-size", type=_positive_int, default=d.batch_size, help="global batch size")
    add("--lr", type=float, default=d.lr, help="Adam learning rate")
    add("--seed", type=int, default=d.seed)
    add("--iw-samples", type=_positive_int, default=d.iw_samples,
        help="importance samples for the test log-likelihood")
    add("--strategy", choices=STRATEGIES, default=d.strategy,
        help="tf.distribute strategy; auto: multi_worker with a TF_CONFIG cluster, "
             "mirrored with several GPUs, else one device")
    add("--cpu-replicas", type=_positive_int, default=d.cpu_replicas,
        help="split the CPU into N logical devices (for --strategy mirrored without GPUs)")
    add("--deterministic", action="store_true",
        help="deterministic ops (tf.config.experimental.enable_op_determinism): a rerun, "
             "or a resumed run, gives bit-identical weights; slower")
    add("--mixed-precision", action="store_true",
        help="compute in bfloat16 (CPUs with bfloat16 instructions) or float16 (GPUs), "
             "weights, code, KL and likelihood in float32: faster conv models, numbers "
             "differ slightly from float32")
    add("--name", default=None, help="run name (default MODEL-ARCH-DATASET)")
    add("--out", default=d.out, help="runs root directory")
    add("--overwrite", action="store_true", help="replace an existing run of the same name")
    _add_export_arguments(parser, export_flag=True)


def _add_export_arguments(parser, export_flag=False):
    if export_flag:
        parser.add_argument("--export", action=argparse.BooleanOptionalAction, default=True,
                            help="export a SavedModel when training ends (default: yes)")
    parser.add_argument("--saved-models", default="saved_models",
                        help="export root, laid out as DIR/NAME/VERSION for TF Serving")
    parser.add_argument("--tflite", action="store_true", help="also write decoder.tflite")


def _parser():
    parser = argparse.ArgumentParser(
        prog="vae-tf", description="Train and use autoencoders, VAEs and conditional VAEs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train_arguments(commands.add_parser("train", help="train a model into runs/NAME"))

    evaluate = commands.add_parser("evaluate", help="test-set -ELBO and IWAE log-likelihood")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--iw-samples", type=_positive_int, default=100)

    export = commands.add_parser("export", help="export a run's model as a SavedModel")
    export.add_argument("run_dir")
    export.add_argument("--name", default=None, help="model name (default: the run's name)")
    _add_export_arguments(export)

    sample = commands.add_parser("sample", help="a grid of images sampled from the prior")
    sample.add_argument("run_dir", nargs="?", help="a run directory (or use --saved-model)")
    sample.add_argument("--saved-model", default=None,
                        help="sample from an exported SavedModel version directory instead")
    sample.add_argument("-n", "--num-samples", type=_positive_int, default=64)
    sample.add_argument("--label", type=int, default=None, help="class to generate (CVAE)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default="samples.png")

    for name, text, default_out in (
        ("encode", "latent means of a split (numpy .npy; labels beside it)", "z.npy"),
        ("score", "per-example anomaly scores (-log p(x) estimate) as CSV", "scores.csv"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("run_dir")
        command.add_argument("--split", choices=["train", "validation", "test"], default="test")
        command.add_argument("--out", default=default_out)
        if name == "score":
            command.add_argument("--iw-samples", type=_positive_int, default=100)

    plot = commands.add_parser("plot", help="re-draw every plot of a run into RUN_DIR/plots")
    plot.add_argument("run_dir")

    bench = commands.add_parser("benchmark", help="training throughput, serving latency, memory")
    bench.add_argument("--epochs", type=_positive_int, default=3, help="timed epochs per configuration")
    bench.add_argument("--examples", type=_positive_int, default=None,
                       help="train on the first N images (default: all 60,000)")
    bench.add_argument("--config", choices=["mlp", "conv"], nargs="+", default=["mlp", "conv"])
    bench.add_argument("--serving-calls", type=_positive_int, default=1000)
    bench.add_argument("--out", default=None, help="also write the results as JSON")
    return parser


def _train(args):
    from vae_tf.config import TrainConfig
    from vae_tf.distribute import split_cpu
    from vae_tf.training import train

    split_cpu(args.cpu_replicas)  # before any TensorFlow op runs

    run_only = ("command", "overwrite", "export", "saved_models", "tflite")
    values = {k: v for k, v in vars(args).items() if k not in run_only}
    for key in ("hidden_units", "filters", "image_size"):
        if values[key] is not None:
            values[key] = tuple(values[key])
    run_dir = train(TrainConfig(**values), overwrite=args.overwrite)
    if run_dir is None:  # a non-chief worker: the chief writes the run
        return
    _print_metrics(run_dir)
    if args.export:
        _export_run(run_dir, run_dir.name, args.saved_models, args.tflite)


def _export_run(run_dir, name, saved_models, tflite):
    from vae_tf.export import export_saved_model
    from vae_tf.training import load_run_model

    _, model = load_run_model(run_dir)
    path = export_saved_model(model, saved_models, name=name, tflite=tflite)
    print(f"exported SavedModel to {path}")


def _export(args):
    from vae_tf.names import check_name

    run_dir = pathlib.Path(args.run_dir)
    name = check_name(run_dir.resolve().name if args.name is None else args.name)
    _export_run(run_dir, name, args.saved_models, args.tflite)


def _print_metrics(run_dir):
    import json

    metrics = json.loads((pathlib.Path(run_dir) / "metrics.json").read_text())
    print(f"test metrics of {run_dir} (nats per example):")
    for key, value in metrics.items():
        print(f"  {key:<20} {value:>12.3f}" if isinstance(value, float) else f"  {key:<20} {value:>12}")


def _evaluate(args):
    from vae_tf.config import write_json
    from vae_tf.training import evaluate_model, load_run

    _, model, data = load_run(args.run_dir)
    write_json(pathlib.Path(args.run_dir) / "metrics.json", evaluate_model(model, data, args.iw_samples))
    _print_metrics(args.run_dir)


def _sample(args):
    from vae_tf import plots

    if (args.run_dir is None) == (args.saved_model is None):
        raise ValueError("give either RUN_DIR or --saved-model DIR")
    images = _sample_saved_model(args) if args.saved_model else _sample_run(args)
    title = f"{args.num_samples} samples" + ("" if args.label is None else f" of class {args.label}")
    grid = plots.image_grid(images, min(args.num_samples, 8))
    fig = plots.image_figure(grid, title, "sample", "sample")
    _atomic(args.out, lambda path: plots.save_figure(fig, path))
    print(f"wrote {args.out}")


def _sample_run(args):
    from vae_tf.training import load_run_model

    _, model = load_run_model(args.run_dir)
    if not model.can_sample:
        raise ValueError("an AE has no prior to sample from: use a VAE or CVAE run")
    if args.label is not None and not model.is_conditional:
        raise ValueError("--label needs a CVAE run")
    if args.label is not None and not 0 <= args.label < model.num_classes:
        raise ValueError(f"--label must be in [0, {model.num_classes}), got {args.label}")
    labels = args.label if model.is_conditional else None
    return model.sample(args.num_samples, labels=labels, seed=args.seed)


def _sample_saved_model(args):
    import tensorflow as tf

    from vae_tf.export import MAX_SAMPLES

    if not (pathlib.Path(args.saved_model) / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{args.saved_model}: not a SavedModel directory (no saved_model.pb)")
    signatures = tf.saved_model.load(args.saved_model).signatures
    if "sample" not in signatures:
        raise ValueError(f"{args.saved_model} has no 'sample' signature (an AE cannot sample)")
    if args.num_samples > MAX_SAMPLES:
        raise ValueError(f"-n must be <= {MAX_SAMPLES}, got {args.num_samples}")
    inputs = {"num_samples": tf.constant(args.num_samples), "seed": tf.constant(args.seed)}
    conditional = "labels" in signatures["sample"].structured_input_signature[1]
    if conditional != (args.label is not None):
        raise ValueError("--label is required for a conditional SavedModel and only for one")
    if conditional:
        inputs["labels"] = tf.fill([args.num_samples], args.label)
    return signatures["sample"](**inputs)["images"].numpy()


def _split(data, name):
    split = getattr(data, name)
    if split is None:
        raise ValueError(f"the run has no {name} split (validation_fraction is 0)")
    return split


def _encode(args):
    import numpy as np

    from vae_tf.evaluation import latent_features
    from vae_tf.training import load_run

    _, model, data = load_run(args.run_dir)
    features, labels = latent_features(model, _split(data, args.split))
    out = pathlib.Path(args.out)
    _atomic(out, lambda path: np.save(path, features))
    message = f"wrote {features.shape} latent means to {out}"
    if data.num_classes is not None:
        labels_path = out.with_name(out.stem + "_labels.npy")
        _atomic(labels_path, lambda path: np.save(path, labels))
        message += f" and their labels to {labels_path}"
    print(message)


def _score(args):
    from vae_tf.evaluation import anomaly_scores, iterate_batches
    from vae_tf.training import load_run

    _, model, data = load_run(args.run_dir)
    split = _split(data, args.split)
    scores = anomaly_scores(model, split, num_samples=args.iw_samples)
    labels = [int(v) for _, y in iterate_batches(split) for v in y.numpy()]

    def write(path):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "label", "score"])
            writer.writerows((i, label, f"{score:.4f}") for i, (label, score) in enumerate(zip(labels, scores)))

    _atomic(args.out, write)
    print(f"wrote {len(scores)} anomaly scores (nats, higher = more anomalous) to {args.out}")


def _plot(args):
    from vae_tf.training import draw_plots, held_out_examples, load_run, read_history

    _, model, data = load_run(args.run_dir)
    images, labels = held_out_examples(data)
    plots_dir = pathlib.Path(args.run_dir) / "plots"
    for path in draw_plots(model, images, labels, read_history(args.run_dir), plots_dir):
        print(f"wrote {path}")


def _atomic(path, write):
    """Calls write(temporary path) and renames the result to `path` only if it succeeds."""
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: output directory does not exist")
    temporary = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _benchmark(args):
    from vae_tf import benchmark
    from vae_tf.config import write_json

    results = benchmark.run(args.epochs, args.examples, args.config, args.serving_calls)
    print(benchmark.format_table(results))
    if args.out:
        print(f"results written to {write_json(args.out, results)}")


COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "export": _export,
    "sample": _sample,
    "encode": _encode,
    "score": _score,
    "plot": _plot,
    "benchmark": _benchmark,
}


def main(argv=None):
    """Entry point of the `vae-tf` console script; returns the exit status."""
    import tensorflow as tf

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    tf.get_logger().setLevel(logging.ERROR)
    try:
        COMMANDS[args.command](args)
    except (ValueError, OSError, RuntimeError, tf.errors.OpError) as error:
        message = error.message if isinstance(error, tf.errors.OpError) else str(error)
        print(f"vae-tf: error: {message.splitlines()[0] if message else type(error).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vae-tf: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
