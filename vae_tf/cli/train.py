"""`vae-tf train`: one option per `RunConfig` setting, described by the setting itself."""

import argparse

from vae_tf.cli.options import add_export_arguments
from vae_tf.cli.report import print_metrics, print_export


def add_config_arguments(parser, hidden=()):
    """One option per RunConfig setting: help, default and choices from its field, and
    --preset. An option not given is left out of the parsed namespace (its default is
    filled in by `config_from_options`), so that a preset's settings apply to it. The
    settings named in `hidden` (by `option_dest`) are parsed but left out of --help."""
    from vae_tf.config import PRESETS, flag, option_dest, option_fields, value_type

    presets = "; ".join(f"{name}: {preset.help}" for name, preset in PRESETS.items())
    parser.add_argument("--preset", choices=tuple(PRESETS), default=argparse.SUPPRESS,
                        help=f"a protocol from the literature, whose settings replace the defaults "
                             f"(options given still win): {presets}")
    for section, field in option_fields():
        python_type, item_type, length = value_type(field)
        meta = field.metadata
        dest = option_dest(section, field)
        options = {"dest": dest, "default": argparse.SUPPRESS, "help": meta["help"]}
        if python_type is bool:  # an optional one (default None) can also be switched off
            options["action"] = "store_true" if field.default is False else argparse.BooleanOptionalAction
        else:
            metavar = meta["metavar"] or (None if meta["choices"] else field.name.upper())
            options.update(type=item_type or python_type, choices=meta["choices"], metavar=metavar)
            if python_type is tuple:
                options["nargs"] = length or "+"
        if field.default not in (None, False):
            options["help"] += f" (default: {field.default})"
        if dest in hidden:
            options["help"] = argparse.SUPPRESS
        parser.add_argument(flag(field), **options)


def add_train(commands):
    train = commands.add_parser("train", help="train a model into runs/NAME")
    add_config_arguments(train)
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing vae_tf run of the same name once the new one finishes")
    add_export_arguments(train, export_flag=True)
    train.set_defaults(handler=train_command)


def train_command(args):
    from vae_tf.config import config_from_options
    from vae_tf.runtime.distribute import split_cpu
    from vae_tf.runs.exporting import export_model
    from vae_tf.runs.training import train

    config = config_from_options(vars(args))  # validated in full before anything runs
    split_cpu(config.runtime.cpu_replicas)  # before any TensorFlow op runs
    finished = train(config, overwrite=args.overwrite)
    if finished is None:  # a non-chief worker: the chief writes the run
        return
    print_metrics(finished)
    if args.export:
        print_export(*export_model(finished.model, finished.path, finished.name, args.saved_models, args.tflite))
