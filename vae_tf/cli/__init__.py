"""The `vae-tf` command line: argument parsing and dispatch; the work is in the library.

`vae-tf train`'s options are generated from the fields of `vae_tf.config.RunConfig`
(help, defaults and choices come from there). Installed as the `vae-tf` console script
(`console_main`) and runnable as `python -m vae_tf`.
"""

import argparse
import dataclasses
import errno
import importlib.metadata
import logging
import pathlib
import sys

log = logging.getLogger("vae_tf")

SPLITS = ("train", "validation", "test")  # the splits of vae_tf.data.DataSplits
SAMPLERS = ("prior", "gmm")  # where `sample` and `export` draw latent codes from
SAMPLER_HELP = ("draw codes from the model's prior or from the run's fitted mixture "
                "(vae-tf fit-sampler); default: the prior if the model has one, else the mixture")


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
        if python_type is bool:  # an optional one (default None) can also be switched off
            options["action"] = "store_true" if field.default is False else argparse.BooleanOptionalAction
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


def build_parser():
    from vae_tf.benchmarks.throughput import CONFIGS

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
    export.add_argument("--sampler", choices=SAMPLERS, default=None,
                        help="the `sample` signature's codes: " + SAMPLER_HELP)
    _add_export_arguments(export)

    fit_sampler = commands.add_parser(
        "fit-sampler", help="fit a Gaussian mixture to a run's training codes (ex-post sampling)")
    fit_sampler.add_argument("run_dir")
    fit_sampler.add_argument("--components", type=_positive_int, default=10,
                             help="mixture components (default: %(default)s)")
    fit_sampler.add_argument("--seed", type=int, default=0, help="seed of the k-means initialisation")

    sample = commands.add_parser("sample", help="a grid of images sampled from the prior")
    sample.add_argument("run_dir", nargs="?", help="a run directory (or use --saved-model)")
    sample.add_argument("--saved-model", default=None,
                        help="sample from an exported SavedModel version directory instead")
    sample.add_argument("-n", "--num-samples", type=_positive_int, default=64)
    sample.add_argument("--label", type=int, default=None,
                        help="class to generate (CVAE, or a VQ-VAE with a conditional prior)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--sampler", choices=SAMPLERS, default=None, help=SAMPLER_HELP)
    sample.add_argument("--temperature", type=float, default=1.0,
                        help="prior temperature, > 0 (VQ-VAE prior only; default: 1.0)")
    sample.add_argument("--out", default="samples.png")

    encode = commands.add_parser("encode", help="latent means of a split (numpy .npy; labels beside it)")
    encode.add_argument("run_dir")
    encode.add_argument("--split", choices=SPLITS, default="test")
    encode.add_argument("--out", default="z.npy")

    _add_anomaly_parsers(commands)

    train_prior = commands.add_parser(
        "train-prior", help="train a PixelCNN prior over a VQ-VAE run's codes, saved in the run")
    train_prior.add_argument("run_dir")
    train_prior.add_argument("--epochs", type=_positive_int, default=10)
    train_prior.add_argument("--conditional", action="store_true",
                             help="condition the prior on the class labels")
    train_prior.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    train_prior.add_argument("--filters", type=_positive_int, default=64,
                             help="channels of the PixelCNN's gated layers (default: 64)")
    train_prior.add_argument("--layers", type=_positive_int, default=5,
                             help="gated layers after the first (default: 5)")

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
    bench.add_argument("--config", choices=(*CONFIGS, "large"), nargs="+", default=list(CONFIGS),
                       help="large: a conv VAE on 250x250x3 JPEG files written to a temporary folder, "
                            "run once per --large-files count in its own process")
    bench.add_argument("--serving-calls", type=_positive_int, default=1000)
    bench.add_argument("--repeats", type=_positive_int, default=1,
                       help="rounds of each configuration's variants (each in its own process); "
                            "the table gives the medians (default: 1)")
    bench.add_argument("--large-files", type=_positive_int, nargs="+", default=[1000, 2000], metavar="N",
                       help="JPEG file counts for --config large (default: 1000 2000)")
    bench.add_argument("--cache", type=_non_negative_int, default=0, metavar="MIB",
                       help="--config large: MiB for caching decoded images (default: 0, stream)")
    bench.add_argument("--scaling", action="store_true",
                       help="instead: two single-core workers on 127.0.0.1 (MultiWorkerMirroredStrategy) "
                            "against one single-core process, for each of --config mlp/conv")
    bench.add_argument("--out", default=None, help="also write the results as JSON")
    return parser


_IMAGES_HELP = ("a .npy array of images (N, H, W[, C]): floats in [0, 1] or uint8 0-255 "
                "(loaded with allow_pickle=False)")


def _add_data_arguments(command, split_help):
    """Where the data to score comes from: `train`'s data options, or --images."""
    from vae_tf.config import DataConfig, flag, value_type

    for field in dataclasses.fields(DataConfig):
        if field.name in ("dataset", "data_dir", "image_size", "color_mode", "label_column", "columns"):
            _, item_type, length = value_type(field)
            options = {"default": None, "help": field.metadata["help"], "choices": field.metadata["choices"]}
            if length:
                options.update(nargs=length, type=item_type, metavar=field.metadata["metavar"])
            command.add_argument(flag(field), **options)
    command.add_argument("--images", default=None, help=_IMAGES_HELP)
    command.add_argument("--split", choices=SPLITS, default="test", help=split_help)


def _add_score_options(command):
    from vae_tf.analysis.anomaly import METHODS

    command.add_argument("--score", choices=METHODS, nargs="+", default=None, dest="scores",
                         help="scores to compute (default: every score the model supports)")
    command.add_argument("--iw-samples", type=_positive_int, default=None,
                         help="importance samples of iw_nll and a VAE's complexity (default: the "
                              "calibration's on a calibrated run, else 100)")


def _add_anomaly_parsers(commands):
    score = commands.add_parser("score", help="per-example anomaly scores (nats, higher = more "
                                "anomalous) of the run's split or of any data, as CSV")
    score.add_argument("run_dir")
    _add_data_arguments(score, "split to score: the run's own, or of --dataset (default: test)")
    _add_score_options(score)
    score.add_argument("--anomaly", action="store_true",
                       help="require the 0/1 anomaly column (added anyway once the run is calibrated)")
    score.add_argument("--out", default="scores.csv")

    calibrate = commands.add_parser("calibrate", help="pick an anomaly threshold on the run's "
                                    "validation split; stored as RUN_DIR/anomaly.json")
    calibrate.add_argument("run_dir")
    calibrate.add_argument("--score", default=None,
                           help="score to threshold (default: regret for a VAE, complexity for an AE)")
    calibrate.add_argument("--fpr", type=float, default=0.01,
                           help="fraction of normal inputs to flag, in (0, 1) (default: 0.01)")
    calibrate.add_argument("--iw-samples", type=_positive_int, default=100)

    ood = commands.add_parser("ood", help="AUROC, AUPRC and FPR at 95%% TPR of every score (and a "
                              "calibrated run's precision and recall at its threshold): the run's test "
                              "split against other data; roc.png and histograms.png beside --out")
    ood.add_argument("run_dir")
    _add_data_arguments(ood, "split of --dataset to use as out-of-distribution (default: test)")
    _add_score_options(ood)
    ood.add_argument("--out", default="ood.json")


def _train(args):
    from vae_tf.runtime.distribute import split_cpu
    from vae_tf.runs.training import train

    config = _config_from(args)  # validated in full before anything runs
    split_cpu(config.runtime.cpu_replicas)  # before any TensorFlow op runs
    finished = train(config, overwrite=args.overwrite)
    if finished is None:  # a non-chief worker: the chief writes the run
        return
    _print_metrics(finished)
    if args.export:
        _export_model(finished.model, finished.name, args.saved_models, args.tflite, finished.path)


def _export_model(model, name, saved_models, tflite, run_dir, latent_sampler=None):
    from vae_tf.runs.calibration import load_calibration
    from vae_tf.serving.export import export_saved_model

    record = load_calibration(run_dir)  # a calibrated run also gets the `anomaly` signature
    path = export_saved_model(model, saved_models, name=name, tflite=tflite, anomaly=record,
                              latent_sampler=latent_sampler)
    print(f"exported SavedModel to {path}" + ("" if record is None else " with an anomaly signature"))


def _export(args):
    from vae_tf.runtime.names import check_name
    from vae_tf.runs.run import Run

    from vae_tf.runs.runlock import run_lock

    run_dir = pathlib.Path(args.run_dir)
    name = check_name(run_dir.resolve().name if args.name is None else args.name)
    finished = Run(run_dir)  # first: a missing run is refused before the lock is taken
    sampler = _latent_sampler(finished, args.sampler, required=False)
    with run_lock(run_dir):
        _export_model(finished.model, name, args.saved_models, args.tflite, run_dir, sampler)


def _latent_sampler(finished, choice, required=True):
    """The `latent_sampler` for `--sampler choice` of a run: None for the model's prior.

    Without a choice: the prior if the model has one, else the run's fitted mixture
    (required: an error if there is none; else None, e.g. an AE exported without one).
    """
    model = finished.model
    if choice == "prior" or (choice is None and model.can_sample):
        if not model.can_sample:
            raise ValueError("--sampler prior: this model has no prior (an AE); "
                             "fit a mixture with vae-tf fit-sampler and use --sampler gmm")
        return None
    sampler = finished.latent_sampler
    if sampler is None and (required or choice == "gmm"):
        why = "" if model.can_sample else "this model has no prior (an AE) and "
        raise ValueError(f"{why}{finished.path} has no fitted latent sampler: run "
                         f"vae-tf fit-sampler {finished.path} first")
    return sampler


def _fit_sampler(args):
    from vae_tf.analysis.samplers import GaussianMixtureSampler

    from vae_tf.runs.runlock import run_lock

    finished, model, data = _open_with_data(args.run_dir)
    if model.is_conditional:
        raise ValueError("fit-sampler needs an unconditional model: a mixture over codes "
                         "ignores the labels a conditional (CVAE) decoder needs")
    with run_lock(finished.path):
        sampler = GaussianMixtureSampler.fit_model(model, data.train, args.components, args.seed)
        path = finished.write_latent_sampler(sampler)
    print(f"wrote a {args.components}-component Gaussian mixture over "
          f"{sampler.latent_dim}-D training codes to {path}")


def _print_metrics(finished):
    print(f"test metrics of {finished.path} (nats per example):")
    for key, value in finished.metrics.items():
        print(f"  {key:<20} {value:>12.3f}" if isinstance(value, float) else f"  {key:<20} {value:>12}")


def _open_with_data(run_dir):
    """(run, model, data splits) of a finished run; the model first, so an unfinished
    run is refused before any data is read."""
    from vae_tf.runs.run import Run
    from vae_tf.runs.training import load_config_data

    finished = Run(run_dir)
    model = finished.model
    return finished, model, load_config_data(finished.config)


def _evaluate(args):
    from vae_tf.runs.training import evaluate_model

    from vae_tf.runs.runlock import run_lock

    finished, model, data = _open_with_data(args.run_dir)
    with run_lock(finished.path):
        finished.write_metrics(evaluate_model(model, data, args.iw_samples))
    _print_metrics(finished)


def _sample(args):
    from vae_tf.analysis import plots
    from vae_tf.serving.export import sample_saved_model
    from vae_tf.runs.run import atomic_write

    if (args.run_dir is None) == (args.saved_model is None):
        raise ValueError("give either RUN_DIR or --saved-model DIR")
    if args.saved_model and args.sampler:
        raise ValueError("--sampler applies only to a RUN_DIR: a SavedModel samples as it was exported")
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
    from vae_tf.runs.run import Run

    finished = Run(args.run_dir)
    model = finished.model
    if model.learns_prior and not model.can_sample:
        raise ValueError("this run has no prior yet: train one with vae-tf train-prior RUN")
    sampler = _latent_sampler(finished, args.sampler)  # first: it refuses a model that cannot sample
    labels = _sampling_labels(model, args.label)
    options = {} if sampler is None else {"latent_sampler": sampler}
    if "temperature" in model.sample_options:
        if not args.temperature > 0:
            raise ValueError(f"--temperature must be > 0, got {args.temperature}")
        options["temperature"] = args.temperature
    elif args.temperature != 1.0:
        raise ValueError("--temperature applies only to a model with an autoregressive prior (vqvae)")
    if "progress" in model.sample_options:  # ancestral sampling: one step per code position
        options["progress"] = _progress_bar()
    return model.sample(args.num_samples, labels=labels, seed=args.seed, **options)


def _progress_bar():
    """A `progress(done, total)` hook that draws a keras Progbar."""
    import keras

    bar = None

    def progress(done, total):
        nonlocal bar
        bar = bar or keras.utils.Progbar(total, unit_name="position")
        bar.update(done)

    return progress


def _sampling_labels(model, label):
    """The `labels` argument of `model.sample` for `--label`, after checking it applies."""
    classes = model.sample_classes
    if label is not None and classes is None:
        raise ValueError("--label needs a conditional run (CVAE, or a prior trained with --conditional)")
    if label is not None and not 0 <= label < classes:
        raise ValueError(f"--label must be in [0, {classes}), got {label}")
    return label  # None: a conditional model cycles through its classes


def _train_prior(args):
    from vae_tf.models.vqvae.model import fit_prior
    from vae_tf.runs.run import atomic_write
    from vae_tf.runs.runlock import run_lock

    finished, model, data = _open_with_data(args.run_dir)
    if not model.learns_prior:
        raise ValueError(f"{args.run_dir}: train-prior needs a --model vqvae run")
    if args.conditional and data.num_classes is None:
        raise ValueError(f"--conditional needs labelled data; {data.source} has no labels")
    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    with run_lock(finished.path):
        prior, metrics = fit_prior(model, data.train, data.test, args.epochs,
                                   num_classes=data.num_classes if args.conditional else None,
                                   learning_rate=args.lr, filters=args.filters, num_layers=args.layers)
        model.attach_prior(prior)
        atomic_write(finished.path / "model.keras", model.save)
        finished.write_metrics({**finished.metrics, **metrics})
    print(f"prior saved in {finished.path / 'model.keras'}; test NLL "
          f"{metrics['prior_nll']:.3f} nats per image, {metrics['prior_bits_per_dim']:.4f} bits/dim")


def _split(data, name):
    split = getattr(data, name)
    if split is None:
        raise ValueError(f"the run has no {name} split (validation_fraction is 0)")
    return split


def _encode(args):
    import numpy as np

    from vae_tf.analysis.evaluation import latent_features
    from vae_tf.runs.run import atomic_write

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


def _given_table(args, model, feature_names):
    """(name, [(records, labels or None)], count, None) of every record of the table --data-dir,
    with the columns the run was trained on (`feature_names`, None for a .npy/.npz)."""
    from vae_tf.analysis.anomaly import as_arrays
    from vae_tf.data.tabular import read_table

    if args.dataset != "tabular" or model.input_name != "features":
        raise ValueError("--dataset tabular goes with a run trained on a table, and a run trained on "
                         "a table scores --dataset tabular")
    if args.data_dir is None:
        raise ValueError("--dataset tabular needs --data-dir, a .csv, .npy or .npz file of records")
    if args.split != "test":
        raise ValueError("--split applies to image data sets; a table given here is scored whole")
    csv_file = pathlib.Path(args.data_dir).suffix.lower() == ".csv"
    columns = args.columns or (feature_names if csv_file else None)
    table = read_table(args.data_dir, args.label_column, columns, drop_constant=False)
    records, _ = as_arrays(model, table.features)
    return pathlib.Path(args.data_dir).name, [(records, table.labels)], len(records), None


def _run_feature_names(finished):
    """The feature columns a run trained on a table uses (after dropping constant ones), or None."""
    if finished.model.input_name != "features" or finished.config.data.dataset != "tabular":
        return None
    from vae_tf.runs.training import load_config_data

    return load_config_data(finished.config).feature_names


def _given_data(args, model, feature_names=None):
    """(name, iterable of (images, labels or None) numpy batches, count or None, file paths
    or None) of --images or --dataset; None if neither was given. Everything is checked
    before any scoring. A table (--dataset tabular) is read whole, with the columns
    `feature_names`."""
    import numpy as np

    from vae_tf.analysis.anomaly import as_arrays
    from vae_tf.data import load_data

    if args.images is not None and args.dataset is not None:
        raise ValueError("give --images or --dataset, not both")
    if args.images is not None:
        if model.is_conditional:
            raise ValueError("a conditional run needs labels: use --dataset with labelled data, not --images")
        images, _ = as_arrays(model, np.load(args.images, allow_pickle=False))
        return pathlib.Path(args.images).name, [(images, None)], len(images), None
    if args.dataset is None:
        if args.data_dir or args.image_size or args.color_mode or args.label_column or args.columns:
            raise ValueError("--data-dir, --image-size, --color-mode, --label-column and --columns "
                             "need --dataset")
        return None
    if args.dataset == "tabular" or model.input_name == "features":
        return _given_table(args, model, feature_names)
    height, width, channels = model.image_shape
    data = load_data(args.dataset, args.data_dir, batch_size=256, validation_fraction=0.0,
                     image_size=args.image_size or (height, width),
                     color_mode=args.color_mode or ("grayscale" if channels == 1 else "rgb"))
    split = _split(data, args.split)
    return data.source, _numpy_batches(split, _labelled(data)), None, _split_paths(data, args.split)


def _split_paths(data, name):
    """The file of each example of a split (image folders' validation and test), else None."""
    return (data.paths or {}).get(name)


def _labelled(data):
    """Whether a source's labels mean something: class ids, or dSprites' factor vectors."""
    return data.num_classes is not None or data.factor_names is not None


def _numpy_batches(split, labelled):
    for x, y in split:
        yield x.numpy(), (y.numpy() if labelled else None)


def _run_split(finished, name):
    """(name, batches, count, file paths or None) of a run's own split."""
    from vae_tf.runs.training import load_config_data

    data = load_config_data(finished.config)
    batches = _numpy_batches(_split(data, name), _labelled(data))
    return f"{finished.name} {name} split", batches, None, _split_paths(data, name)


def _stream_scores(scorer, batches, count=None, chunk=2048):
    """Scores numpy batches in chunks of about `chunk` images, with a progress bar.

    One `anomaly.Scorer` serves every chunk, so each score's graph is traced once.

    Returns:
        ({method: scores}, labels or None) as numpy arrays.
    """
    import keras
    import numpy as np

    progress = keras.utils.Progbar(count, unit_name="image")
    parts, all_labels, pending = [], [], []

    def flush():
        images = np.concatenate([x for x, _ in pending])
        labels = None if pending[0][1] is None else np.concatenate([y for _, y in pending])
        model_labels = labels if scorer.model.is_conditional else None  # others: labels only for the CSV
        parts.append(scorer(images, model_labels))
        all_labels.append(labels)
        progress.add(len(images))
        pending.clear()

    for images, labels in batches:
        for start in range(0, len(images), chunk):
            part = slice(start, start + chunk)
            pending.append((images[part], None if labels is None else labels[part]))
            if sum(len(x) for x, _ in pending) >= chunk:
                flush()
    if pending:
        flush()
    if not parts:
        raise ValueError("the data is empty: nothing to score")
    scores = {m: np.concatenate([p[m] for p in parts]) for m in parts[0]}
    labels = None if all_labels[0] is None else np.concatenate(all_labels)
    return scores, labels


def _methods(model, requested, also=None):
    from vae_tf.analysis.anomaly import available_methods

    methods = list(requested or available_methods(model))
    if also and also not in methods:
        methods.append(also)
    return methods


def _iw_samples(args, record, model):
    """--iw-samples, or the calibration's: its threshold holds only for the score it was set on."""
    calibrated = (record or {}).get("options", {}).get("iw_samples")
    if args.iw_samples is None:
        return calibrated or 100
    uses_them = record and (record["score"] == "iw_nll" or (record["score"] == "complexity" and model.is_variational))
    if calibrated and uses_them and args.iw_samples != calibrated:
        raise ValueError(f"--iw-samples {args.iw_samples}: the run was calibrated on {record['score']} "
                         f"with {calibrated} importance samples; leave --iw-samples out to use them")
    return args.iw_samples


def _score(args):
    import numpy as np

    from vae_tf.analysis.anomaly import Scorer, is_anomaly
    from vae_tf.runs.calibration import load_calibration
    from vae_tf.runs.run import Run, write_csv

    finished = Run(args.run_dir)
    model = finished.model
    record = load_calibration(finished.path)
    if args.anomaly and record is None:
        raise ValueError(f"{finished.path} was never calibrated: "
                         f"run vae-tf calibrate {args.run_dir} first")
    methods = _methods(model, args.scores, record and record["score"])
    features = _run_feature_names(finished) if args.dataset == "tabular" else None
    name, batches, count, paths = _given_data(args, model, features) or _run_split(finished, args.split)
    scores, labels = _stream_scores(Scorer(model, methods, _iw_samples(args, record, model)), batches, count)
    columns = {"index": range(len(next(iter(scores.values()))))}
    if paths is not None:  # an image folder: the file of each row
        columns["path"] = paths
    if labels is not None:  # a class id, or a factor-index vector (dSprites) as "i j k"
        columns["label"] = [" ".join(str(i) for i in np.atleast_1d(v)) for v in labels]
    columns.update({m: [f"{v:.4f}" for v in scores[m]] for m in methods})
    if record is not None:
        columns["anomaly"] = is_anomaly(scores, record).astype(int).tolist()
    write_csv(args.out, list(columns), zip(*columns.values()))
    print(f"wrote {len(columns['index'])} rows of {', '.join(methods)} (nats, higher = more "
          f"anomalous) for {name} to {args.out}")


def _calibrate(args):
    from vae_tf.analysis import anomaly
    from vae_tf.runs.calibration import save_calibration
    from vae_tf.runs.run import Run
    from vae_tf.runs.runlock import run_lock

    finished = Run(args.run_dir)
    model = finished.model
    method = args.score or anomaly.default_method(model)
    anomaly.check_methods(model, [method])
    if not 0.0 < args.fpr < 1.0:
        raise ValueError(f"--fpr must be in (0, 1), got {args.fpr}")
    with run_lock(finished.path):
        _, batches, count, _ = _run_split(finished, "validation")
        scores, _ = _stream_scores(anomaly.Scorer(model, [method], args.iw_samples), batches, count)
        options = {"iw_samples": args.iw_samples, "seed": 0, **anomaly.REGRET_OPTIONS}
        record = anomaly.calibrate(scores[method], args.fpr, method, options)
        path = save_calibration(finished.path, record)
    print(f"threshold {record['threshold']:.4f} on {method} flags {args.fpr:g} of "
          f"{record['num_examples']} validation {'records' if model.input_name == 'features' else 'images'}; "
          f"wrote {path}")


def _ood(args):
    import pathlib

    from vae_tf.analysis import anomaly, plots
    from vae_tf.runs.calibration import load_calibration
    from vae_tf.runs.run import Run, atomic_write, write_json

    finished = Run(args.run_dir)
    model = finished.model
    given = _given_data(args, model, _run_feature_names(finished) if args.dataset == "tabular" else None)
    if given is None:
        raise ValueError("give the out-of-distribution data: --dataset (and --data-dir) or --images")
    out = pathlib.Path(args.out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: output directory does not exist")
    record = load_calibration(finished.path)  # a calibrated run also reports its threshold
    methods = _methods(model, args.scores, record and record["score"])
    out_name, out_batches, out_count, _ = given
    scorer = anomaly.Scorer(model, methods, _iw_samples(args, record, model))
    odd, _ = _stream_scores(scorer, out_batches, out_count)
    in_name, in_batches, in_count, _ = _run_split(finished, "test")
    normal, _ = _stream_scores(scorer, in_batches, in_count)
    report = {"in": in_name, "out": out_name,
              "scores": {m: anomaly.roc_report(normal[m], odd[m]) for m in methods}}
    if record is not None:
        calibrated = record["score"]
        report["calibrated"] = {"score": calibrated, "fpr": record["fpr"],
                                **anomaly.threshold_report(normal[calibrated], odd[calibrated],
                                                           record["threshold"])}
    roc = plots.ood_roc(normal, odd, in_name, out_name)
    histograms = plots.ood_histograms(normal, odd, in_name, out_name)
    for figure, file_name in ((roc, "roc.png"), (histograms, "histograms.png")):
        atomic_write(out.parent / file_name, lambda path: plots.save_figure(figure, path))
    write_json(out, report)
    for method, row in report["scores"].items():
        print(f"  {method:<16} AUROC {row['auroc']:.3f}  AUPRC {row['auprc']:.3f}  "
              f"FPR@95%TPR {row['fpr_at_95_tpr']:.3f}")
    if record is not None:
        row = report["calibrated"]
        precision = "none flagged" if row["precision"] is None else f"{row['precision']:.3f}"
        print(f"  calibrated {row['score']} > {row['threshold']:.4g}: precision {precision}  recall "
              f"{row['recall']:.3f}  false positive rate {row['false_positive_rate']:.3f}")
    print(f"wrote {out}, {out.parent / 'roc.png'} and {out.parent / 'histograms.png'}")


def _plot(args):
    from vae_tf.runs.training import draw_plots, held_out_examples, write_projector

    from vae_tf.runs.runlock import run_lock

    finished, model, data = _open_with_data(args.run_dir)
    images, labels = held_out_examples(data)
    with run_lock(finished.path):
        paths = draw_plots(model, images, labels, finished.history(), finished.path / "plots",
                           class_names=data.class_names, latent_sampler=finished.latent_sampler)
        projector = write_projector(model, data, finished.path / "logs" / "projector", args.projector_examples)
    for path in paths:
        print(f"wrote {path}")
    if projector is not None:
        print(f"wrote the Embedding Projector to {projector.parent} (tensorboard --logdir {finished.path / 'logs'})")


# Sample sizes of `vae-tf disentanglement` (`vae_tf.analysis.disentanglement.all_scores`): the
# default takes a few minutes for a small model on 2 CPU cores; --paper-samples uses
# DEFAULT_SAMPLES (disentanglement_lib's); --quick is for smoke tests.
CLI_SAMPLES = {"mig": 10_000, "sap": 5_000, "dci": 5_000, "factor_vae_variance": 5_000,
               "factor_vae_train": 1_000, "factor_vae_eval": 500}
QUICK_SAMPLES = {"mig": 300, "sap": 300, "dci": 300, "factor_vae_variance": 200,
                 "factor_vae_train": 20, "factor_vae_eval": 10}


def _disentanglement(args):
    from vae_tf.analysis.disentanglement import DEFAULT_SAMPLES, all_scores
    from vae_tf.data.dsprites import DSprites
    from vae_tf.runs.run import Run, write_json

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
    from vae_tf.benchmarks import large_images as benchmark_large, scaling as benchmark_scaling, throughput as benchmark
    from vae_tf.runs.run import write_json

    small = [name for name in args.config if name in benchmark.CONFIGS]
    if args.scaling and "large" in args.config:
        raise ValueError("--scaling measures --config mlp and conv, not large")
    if args.scaling:
        examples = args.examples or benchmark_scaling.EXAMPLES
        results = {"scaling": [benchmark_scaling.run(name, examples, args.epochs) for name in small]}
        print(benchmark_scaling.format_table(results["scaling"]))
    else:
        results = benchmark.run(args.epochs, args.examples, small, args.serving_calls, args.repeats) if small else {}
        if small:
            print(benchmark.format_table(results))
        if "large" in args.config:
            results["large"] = benchmark_large.run(args.large_files, args.epochs, args.cache)
            print(benchmark_large.format_table(results["large"]))
    if args.out:
        print(f"results written to {write_json(args.out, results)}")


COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "export": _export,
    "fit-sampler": _fit_sampler,
    "sample": _sample,
    "encode": _encode,
    "score": _score,
    "calibrate": _calibrate,
    "ood": _ood,
    "train-prior": _train_prior,
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

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    tf.get_logger().setLevel(logging.ERROR)
    try:
        COMMANDS[args.command](args)
    except (ValueError, OSError, RuntimeError, tf.errors.OpError) as error:
        message = error.message if isinstance(error, tf.errors.OpError) else str(error)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            message = f"no space left on device while writing {error.filename}"
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
