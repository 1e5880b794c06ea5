"""Commands on a finished run: `evaluate`, `export` and `plot`."""

from vae_tf.cli.options import add_export_arguments, non_negative_int, positive_int
from vae_tf.cli.report import print_export, print_metrics


def add_evaluate(commands):
    from vae_tf.analysis.evaluation import IW_SAMPLES

    evaluate = commands.add_parser("evaluate", help="test-set -ELBO and IWAE log-likelihood")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--iw-samples", type=positive_int, default=IW_SAMPLES)
    evaluate.set_defaults(handler=evaluate_command)


def evaluate_command(args):
    from vae_tf.runs.artefacts import evaluate_run

    print_metrics(evaluate_run(args.run_dir, args.iw_samples))


def add_export(commands):
    from vae_tf.cli.sampling import SAMPLER_HELP
    from vae_tf.runs.sampling import SAMPLERS

    export = commands.add_parser("export", help="export a run's model as a SavedModel")
    export.add_argument("run_dir")
    export.add_argument("--name", default=None, help="model name (default: the run's name)")
    export.add_argument("--sampler", choices=SAMPLERS, default=None,
                        help="the `sample` signature's codes: " + SAMPLER_HELP)
    add_export_arguments(export)
    export.set_defaults(handler=export_command)


def export_command(args):
    from vae_tf.runs.exporting import export_run

    print_export(*export_run(args.run_dir, args.name, args.saved_models, args.tflite, args.sampler))


def add_plot(commands):
    from vae_tf.config import TrainingConfig

    plot = commands.add_parser("plot", help="re-draw every plot of a run into RUN_DIR/plots "
                                            "and its Embedding Projector into RUN_DIR/logs/projector")
    plot.add_argument("run_dir")
    plot.add_argument("--projector-examples", type=non_negative_int, metavar="N",
                      default=TrainingConfig.projector_examples,
                      help="test examples in the Embedding Projector; 0 writes none (default: %(default)s)")
    plot.set_defaults(handler=plot_command)


def plot_command(args):
    from vae_tf.runs.artefacts import plot_run

    paths, projector = plot_run(args.run_dir, args.projector_examples)
    for path in paths:
        print(f"wrote {path}")
    if projector is not None:
        logs = projector.parent.parent
        print(f"wrote the Embedding Projector to {projector.parent} (tensorboard --logdir {logs})")
