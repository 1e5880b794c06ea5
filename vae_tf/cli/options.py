"""Argument types and option groups that several commands share."""

import argparse
import dataclasses


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def add_export_arguments(parser, export_flag=False):
    from vae_tf.serving.export import EXPORT_ROOT

    if export_flag:
        parser.add_argument("--export", action=argparse.BooleanOptionalAction, default=True,
                            help="export a SavedModel when training ends (default: yes)")
    parser.add_argument("--saved-models", default=EXPORT_ROOT,
                        help="export root, laid out as DIR/NAME/VERSION for TF Serving")
    parser.add_argument("--tflite", action="store_true", help="also write decoder.tflite")


def add_data_arguments(command, split_help):
    """Where the data to score comes from: `train`'s data options, or --images
    (the fields of `vae_tf.runs.sources.DataSource`)."""
    from vae_tf.config import DataConfig, flag, value_type
    from vae_tf.runs.sources import SPLITS, DataSource

    given = {field.name for field in dataclasses.fields(DataSource)}
    for field in dataclasses.fields(DataConfig):
        if field.name in given:
            _, item_type, length = value_type(field)
            options = {"default": None, "help": field.metadata["help"], "choices": field.metadata["choices"]}
            if length:
                options.update(nargs=length, type=item_type, metavar=field.metadata["metavar"])
            command.add_argument(flag(field), **options)
    command.add_argument("--images", default=None,
                         help="a .npy array of images (N, H, W[, C]): floats in [0, 1] or uint8 0-255 "
                              "(loaded with allow_pickle=False)")
    command.add_argument("--split", choices=SPLITS, default="test", help=split_help)


def data_source(args):
    """The `DataSource` of the options `add_data_arguments` added."""
    from vae_tf.runs.sources import DataSource

    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(DataSource)}
    if values["image_size"] is not None:
        values["image_size"] = tuple(values["image_size"])
    return DataSource(**values)


def add_score_options(command):
    from vae_tf.analysis.anomaly import METHODS
    from vae_tf.analysis.evaluation import IW_SAMPLES

    command.add_argument("--score", choices=METHODS, nargs="+", default=None, dest="scores",
                         help="scores to compute (default: every score the model supports)")
    command.add_argument("--iw-samples", type=positive_int, default=None,
                         help="importance samples of iw_nll and a VAE's complexity (default: the "
                              f"calibration's on a calibrated run, else {IW_SAMPLES})")
