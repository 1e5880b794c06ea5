"""One run: config -> data -> model -> fit -> evaluate -> plots, in a run directory.

A run is written into `OUT/NAME.partial/` and renamed to `OUT/NAME/` only once
complete, so an existing run is never half-overwritten and a failed run leaves no
directory that looks finished.
"""

import csv
import logging
import pathlib
import shutil

import keras
import numpy as np
import tensorflow as tf

from vae_tf import evaluation, plots
from vae_tf.callbacks import BetaSchedule, ImageLogger
from vae_tf.config import read_config, write_json
from vae_tf.data import load_data
from vae_tf.distribute import get_strategy
from vae_tf.factory import make_model
from vae_tf.models import AE

log = logging.getLogger(__name__)

PLOT_EXAMPLES = 512  # held-out examples used for plots and TensorBoard images


def load_config_data(config):
    """The data pipelines a config describes (the same splits every time)."""
    return load_data(
        config.dataset,
        data_dir=config.data_dir,
        batch_size=config.batch_size,
        validation_fraction=config.validation_fraction,
        binarize=config.binarize,
        image_size=config.image_size,
        color_mode=config.color_mode,
        seed=config.seed,
    )


def build_model(config, data):
    """The compiled model a config describes, for data's image shape and classes."""
    if config.model == "cvae" and data.num_classes is None:
        raise ValueError(f"--model cvae needs labelled data; {data.source} has no labels")
    model = make_model(
        config.model,
        config.arch,
        data.image_shape,
        config.latent_dim,
        num_classes=data.num_classes if config.model == "cvae" else None,
        hidden_units=config.hidden_units,
        filters=config.filters,
        likelihood=config.likelihood,
        sigma=config.sigma,
        learn_sigma=config.learn_sigma,
        beta=config.beta,
        free_bits=config.free_bits,
        seed=config.seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.lr))
    return model


def held_out_examples(data, count=PLOT_EXAMPLES):
    """Up to `count` test images and their labels (None if the data has none)."""
    images, labels = [], []
    # Read the split to the end: stopping early would discard its partly filled cache.
    for x, y in data.test:
        if sum(len(i) for i in images) < count:
            images.append(x.numpy())
            labels.append(y.numpy())
    images, labels = (np.concatenate(a)[:count] for a in (images, labels))
    return images, None if data.num_classes is None else labels


def evaluate_model(model, data, iw_samples):
    """Test-set metrics in nats per example: −ELBO terms and the IWAE estimate."""
    if isinstance(model, AE):
        scores = evaluation.anomaly_scores(model, data.test)
        return {"reconstruction": float(scores.mean()), "examples": int(len(scores))}
    metrics = evaluation.elbo(model, data.test)
    log_p = evaluation.log_likelihoods(model, data.test, num_samples=iw_samples)
    metrics.update(
        iw_log_likelihood=float(log_p.mean()), iw_samples=iw_samples, examples=int(len(log_p))
    )
    return metrics


def draw_plots(model, images, labels, history, out_dir):
    """Saves every plot for `model` on held-out examples into `out_dir`; returns the paths."""
    examples = images if labels is None else tf.data.Dataset.from_tensor_slices((images, labels)).batch(256)
    features, _ = evaluation.latent_features(model, examples)
    return plots.save_all(model, images, labels, history, out_dir, z=features)


def train(config, overwrite=False, verbose="auto"):
    """Runs one training run and returns its directory.

    The model is built and compiled inside the scope of `config.strategy`
    (`vae_tf.get_strategy`); with `mirrored` on a CPU, split it first with
    `vae_tf.distribute.split_cpu(config.cpu_replicas)`.

    Args:
        config: TrainConfig.
        overwrite: bool. Replace an existing run directory of the same name (only
            once the new run has completed). Defaults to False.
        verbose: Keras `fit` verbosity. Defaults to "auto" (a progress bar).

    Returns:
        The run directory: config.json, history.csv, model.keras, metrics.json,
        plots/*.png and TensorBoard logs in logs/.
    """
    final = pathlib.Path(config.out) / config.run_name
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists: pass --overwrite or choose another --name")
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json(partial / "config.json", config.to_dict())

    keras.utils.set_random_seed(config.seed)
    data = load_config_data(config)  # batched with the global batch size
    strategy = get_strategy(config.strategy)
    with strategy.scope():
        model = build_model(config, data)
    images, labels = held_out_examples(data)  # one pass, for TensorBoard and the plots
    callbacks = [
        keras.callbacks.CSVLogger(str(partial / "history.csv")),
        keras.callbacks.TensorBoard(str(partial / "logs")),
        ImageLogger(partial / "logs", images[:8], None if labels is None else labels[:8]),
    ]
    if not isinstance(model, AE):
        callbacks.insert(0, BetaSchedule(config.beta, config.kl_warmup_epochs))
    log.info("training %s on %s: %d parameters", config.run_name, data.source, model.count_params())
    history = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the pipeline shuffles
    )
    model.save(partial / "model.keras")
    metrics = evaluate_model(model, data, config.iw_samples)
    write_json(partial / "metrics.json", metrics)
    draw_plots(model, images, labels, history.history, partial / "plots")

    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    log.info("run written to %s", final)
    return final


def load_run_model(run_dir):
    """Returns (config, model) of a finished run directory."""
    run_dir = pathlib.Path(run_dir)
    config = read_config(run_dir)
    model_path = run_dir / "model.keras"
    if not model_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no model.keras (the run did not finish)")
    return config, keras.saving.load_model(model_path)


def load_run(run_dir):
    """Returns (config, model, data) of a finished run directory."""
    config, model = load_run_model(run_dir)
    return config, model, load_config_data(config)


def read_history(run_dir):
    """The per-epoch history of a run as {column: [values]}, from history.csv."""
    path = pathlib.Path(run_dir) / "history.csv"
    if not path.is_file():
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"} if rows else None

