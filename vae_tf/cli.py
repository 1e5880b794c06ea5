"""The `vae-tf` command line: argument parsing and dispatch; the work is in the library.

`vae-tf train`'s options are generated from the fields of `vae_tf.config.RunConfig`
(help, defaults and choices come from there). Installed as the `vae-tf` console script
(`console_main`) and runnable as `python -m vae_tf`.
"""

import argparse
import importlib.metadata
import logging
import pathlib
import sys

log = logging.getLogger("vae_tf")

SPLITS = ("train", "validation", "test")  # the splits of vae_tf.data.DataSplits


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _dest(section, field):
    return f"{section}.{field.name}" if section else field.name


def _add_config_arguments(parser):
    """One option per RunConfig setting, described by the setting itself."""
    from vae_tf.config import flag, option_fields, value_type

    for section, field in option_fields():
        python_type, item_type, length = value_type(field)
        meta = field.metadata
        options = {"dest": _dest(section, field), "default": field.default, "help": meta["help"]}
        if python_type is bool:
            options["action"] = "store_true"
        else:
            metavar = meta["metavar"] or (None if meta["choices"] else field.name.upper())
            options.update(type=item_type or python_type, choices=meta["choices"], metavar=metavar)
            if python_type is tuple:
                options["nargs"] = length or "+"
            if field.default is not None:
                options["help"] += " (default: %(default)s)"
        parser.add_argument(flag(field), **options)


def _config_from(args):
    """The validated RunConfig of parsed `train` arguments."""
    from vae_tf.config import FORMAT_VERSION, SECTIONS, RunConfig, option_fields

    values = {"format_version": FORMAT_VERSION, **{section: {} for section in SECTIONS}}
    for section, field in option_fields():
        value = getattr(args, _dest(section, field))
        (values[section] if section else values)[field.name] = tuple(value) if isinstance(value, list) else value
    return RunConfig.from_dict(values)


def _add_export_arguments(parser, export_flag=False):
    if export_flag:
        parser.add_argument("--export", action=argparse.BooleanOptionalAction, default=True,
                            help="export a SavedModel when training ends (default: yes)")
    parser.add_argument("--saved-models", default="saved_models",
                        help="export root, laid out as DIR/NAME/VERSION for TF Serving")
    parser.add_argument("--tflite", action="store_true", help="also write decoder.tflite")


def _version():
    try:
        return importlib.metadata.version("vae_tf")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        import vae_tf

        return vae_tf.__version__


def _parser():
    from vae_tf.benchmark import CONFIGS

    parser = argparse.ArgumentParser(
        prog="vae-tf", description="Train and use autoencoders, VAEs and conditional VAEs."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model into runs/NAME")
    _add_config_arguments(train)
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing vae_tf run of the same name once the new one finishes")
    _add_export_arguments(train, export_flag=True)

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
        command.add_argument("--split", choices=SPLITS, default="test")
        command.add_argument("--out", default=default_out)
        if name == "score":
            command.add_argument("--iw-samples", type=_positive_int, default=100)

    plot = commands.add_parser("plot", help="re-draw every plot of a run into RUN_DIR/plots "
                                             "and its Embedding Projector into RUN_DIR/logs/projector")
    plot.add_argument("run_dir")
    plot.add_argument("--projector-examples", type=_non_negative_int, default=2000, metavar="N",
                      help="test examples in the Embedding Projector; 0 writes none (default: 2000)")

    disentangle = commands.add_parser(
        "disentanglement", help="MIG, SAP, DCI and FactorVAE scores of a run trained on dsprites")
    disentangle.add_argument("run_dir")
    disentangle.add_argument("--out", default="scores.json", help="JSON file to write (default: scores.json)")
    disentangle.add_argument("--seed", type=int, default=0, help="seed of every draw and split (default: 0)")
    sizes = disentangle.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true",
                       help="tiny sample sizes (seconds; a smoke test, not a measurement)")
    sizes.add_argument("--paper-samples", action="store_true",
                       help="disentanglement_lib's sample sizes (the FactorVAE score then encodes "
                            "970,000 images: tens of minutes)")

    bench = commands.add_parser("benchmark", help="training throughput, serving latency, memory")
    bench.add_argument("--epochs", type=_positive_int, default=3, help="timed epochs per configuration")
    bench.add_argument("--examples", type=_positive_int, default=None,
                       help="train on the first N images (default: all 60,000)")
    bench.add_argument("--config", choices=tuple(CONFIGS), nargs="+", default=list(CONFIGS))
    bench.add_argument("--serving-calls", type=_positive_int, default=1000)
    bench.add_argument("--out", default=None, help="also write the results as JSON")
    return parser


def _train(args):
    from vae_tf.distribute import split_cpu
    from vae_tf.training import train

    config = _config_from(args)  # validated in full before anything runs
    split_cpu(config.runtime.cpu_replicas)  # before any TensorFlow op runs
    finished = train(config, overwrite=args.overwrite)
    if finished is None:  # a non-chief worker: the chief writes the run
        return
    _print_metrics(finished)
    if args.export:
        _export_model(finished.model, finished.name, args.saved_models, args.tflite)


def _export_model(model, name, saved_models, tflite):
    from vae_tf.export import export_saved_model

    print(f"exported SavedModel to {export_saved_model(model, saved_models, name=name, tflite=tflite)}")


def _export(args):
    from vae_tf.names import check_name
    from vae_tf.run import Run

    run_dir = pathlib.Path(args.run_dir)
    name = check_name(run_dir.resolve().name if args.name is None else args.name)
    _export_model(Run(run_dir).model, name, args.saved_models, args.tflite)


def _print_metrics(finished):
    print(f"test metrics of {finished.path} (nats per example):")
    for key, value in finished.metrics.items():
        print(f"  {key:<20} {value:>12.3f}" if isinstance(value, float) else f"  {key:<20} {value:>12}")


def _open_with_data(run_dir):
    """(run, model, data splits) of a finished run; the model first, so an unfinished
    run is refused before any data is read."""
    from vae_tf.run import Run
    from vae_tf.training import load_config_data

    finished = Run(run_dir)
    model = finished.model
    return finished, model, load_config_data(finished.config)


def _evaluate(args):
    from vae_tf.training import evaluate_model

    finished, model, data = _open_with_data(args.run_dir)
    finished.write_metrics(evaluate_model(model, data, args.iw_samples))
    _print_metrics(finished)


def _sample(args):
    from vae_tf import plots
    from vae_tf.export import sample_saved_model
    from vae_tf.run import atomic_write

    if (args.run_dir is None) == (args.saved_model is None):
        raise ValueError("give either RUN_DIR or --saved-model DIR")
    if args.saved_model:
        images = sample_saved_model(args.saved_model, args.num_samples, args.seed, args.label)
    else:
        images = _sample_run(args)
    title = f"{args.num_samples} samples" + ("" if args.label is None else f" of class {args.label}")
    grid = plots.image_grid(images, min(args.num_samples, 8))
    fig = plots.image_figure(grid, title, "sample", "sample")
    atomic_write(args.out, lambda path: plots.save_figure(fig, path))
    print(f"wrote {args.out}")


def _sample_run(args):
    from vae_tf.run import Run

    model = Run(args.run_dir).model
    labels = _sampling_labels(model, args.label)  # first: it refuses a model that cannot sample
    return model.sample(args.num_samples, labels=labels, seed=args.seed)


def _sampling_labels(model, label):
    """The `labels` argument of `model.sample` for `--label`, after checking the model can."""
    if not model.can_sample:
        raise ValueError("this model has no prior to sample from (an AE): use a VAE-family run")
    if label is not None and not model.is_conditional:
        raise ValueError("--label needs a conditional (CVAE) run")
    if label is not None and not 0 <= label < model.num_classes:
        raise ValueError(f"--label must be in [0, {model.num_classes}), got {label}")
    return label if model.is_conditional else None


def _split(data, name):
    split = getattr(data, name)
    if split is None:
        raise ValueError(f"the run has no {name} split (validation_fraction is 0)")
    return split


def _encode(args):
    import numpy as np

    from vae_tf.evaluation import latent_features
    from vae_tf.run import atomic_write

    _, model, data = _open_with_data(args.run_dir)
    features, labels = latent_features(model, _split(data, args.split))
    out = pathlib.Path(args.out)
    atomic_write(out, lambda path: np.save(path, features))
    message = f"wrote {features.shape} latent means to {out}"
    if data.num_classes is not None:
        labels_path = out.with_name(out.stem + "_labels.npy")
        atomic_write(labels_path, lambda path: np.save(path, labels))
        message += f" and their labels to {labels_path}"
    print(message)


def _score(args):
    import numpy as np

    from vae_tf.evaluation import anomaly_scores, iterate_batches
    from vae_tf.run import write_csv

    _, model, data = _open_with_data(args.run_dir)
    split = _split(data, args.split)
    scores = anomaly_scores(model, split, num_samples=args.iw_samples)
    # A class id, or a factor-index vector (dSprites) written as space-separated indices.
    labels = [" ".join(map(str, np.atleast_1d(v).tolist())) for _, y in iterate_batches(split) for v in y.numpy()]
    rows = ((i, label, f"{score:.4f}") for i, (label, score) in enumerate(zip(labels, scores)))
    write_csv(args.out, ["index", "label", "score"], rows)
    print(f"wrote {len(scores)} anomaly scores (nats, higher = more anomalous) to {args.out}")


def _plot(args):
    from vae_tf.training import draw_plots, held_out_examples, write_projector

    finished, model, data = _open_with_data(args.run_dir)
    images, labels = held_out_examples(data)
    for path in draw_plots(model, images, labels, finished.history(), finished.path / "plots"):
        print(f"wrote {path}")
    projector = write_projector(model, data, finished.path / "logs" / "projector", args.projector_examples)
    if projector is not None:
        print(f"wrote the Embedding Projector to {projector.parent} (tensorboard --logdir {finished.path / 'logs'})")


# Sample sizes of `vae-tf disentanglement` (`vae_tf.disentanglement.all_scores`): the
# default takes a few minutes for a small model on 2 CPU cores; --paper-samples uses
# DEFAULT_SAMPLES (disentanglement_lib's); --quick is for smoke tests.
CLI_SAMPLES = {"mig": 10_000, "sap": 5_000, "dci": 5_000, "factor_vae_variance": 5_000,
               "factor_vae_train": 1_000, "factor_vae_eval": 500}
QUICK_SAMPLES = {"mig": 300, "sap": 300, "dci": 300, "factor_vae_variance": 200,
                 "factor_vae_train": 20, "factor_vae_eval": 10}


def _disentanglement(args):
    from vae_tf.disentanglement import DEFAULT_SAMPLES, all_scores
    from vae_tf.dsprites import DSprites
    from vae_tf.run import Run, write_json

    finished = Run(args.run_dir)
    if finished.config.data.dataset != "dsprites":
        raise ValueError(f"{finished.path} was trained on {finished.config.data.dataset}, not dsprites: "
                         "the metrics need dSprites' ground-truth factors")
    samples = QUICK_SAMPLES if args.quick else DEFAULT_SAMPLES if args.paper_samples else CLI_SAMPLES
    scores = all_scores(finished.model, DSprites(), seed=args.seed, samples=samples)
    print(f"MIG {scores['mig']:.3f}  SAP {scores['sap']:.3f}  DCI disentanglement "
          f"{scores['dci']['disentanglement']:.3f}  FactorVAE {scores['factor_vae']['eval_accuracy']:.3f}")
    print(f"scores written to {write_json(args.out, scores)}")


def _benchmark(args):
    from vae_tf import benchmark
    from vae_tf.run import write_json

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
    "disentanglement": _disentanglement,
    "benchmark": _benchmark,
}


def main(argv=None):
    """Runs one `vae-tf` command; returns the exit status (2 on a bad argument or input).

    Args:
        argv: list of str or None. The arguments after `vae-tf`; None reads sys.argv.

    Example:

    >>> main(["train", "--epochs", "1", "--name", "quick"])
    0
    """
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


def console_main():
    """The `vae-tf` console script (and `python -m vae_tf`): exits with `main`'s status.

    TensorFlow's start-up output is held back by `vae_tf._startup`, which runs when the
    package is imported by this command."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
