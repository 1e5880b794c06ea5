"""One run: config -> data -> model -> fit -> evaluate -> plots, in a run directory.

A run is written into `OUT/NAME.partial/` and renamed to `OUT/NAME/` only once
complete, so an existing run is never half-overwritten and a failed run leaves no
directory that looks finished. While training, `NAME.partial/backup/` holds the
BackupAndRestore state a rerun resumes from.
"""

import csv
import hashlib
import json
import logging
import pathlib
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from vae_tf import evaluation, plots
from vae_tf.callbacks import BetaSchedule, ImageLogger, RunProgbar, StopOnNaN
from vae_tf.config import read_config, write_json
from vae_tf.data import load_data
from vae_tf.distribute import get_strategy, is_chief, shard_by_data, spans_workers
from vae_tf.factory import make_model
from vae_tf.models import AE
from vae_tf.optimizers import FusedAdam
from vae_tf.precision import dtype_policy, mixed_policy_name

log = logging.getLogger(__name__)

PLOT_EXAMPLES = 512  # held-out examples used for plots
BACKUP_DIR = "backup"  # BackupAndRestore state inside NAME.partial/


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
    model.compile(optimizer=FusedAdam(learning_rate=config.lr))
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


def draw_plots(model, images, labels, history, out_dir, class_names=None):
    """Saves every plot for `model` on held-out examples into `out_dir`; returns the paths."""
    examples = images if labels is None else tf.data.Dataset.from_tensor_slices((images, labels)).batch(256)
    features, _ = evaluation.latent_features(model, examples)
    return plots.save_all(model, images, labels, history, out_dir, z=features, class_names=class_names)


def weights_digest(model):
    """SHA-256 of a model's weights: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def _prepare_run_dir(config, final, overwrite, multi_worker):
    """Returns the partial directory the chief of a run writes into.

    A `NAME.partial/` holding the same configuration is an interrupted run and is
    resumed (on a single worker); one with another configuration is refused unless
    `overwrite`.
    """
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists: pass --overwrite or choose another --name")
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        try:
            previous = read_config(partial).to_dict()
        except (FileNotFoundError, ValueError):
            previous = None
        same = previous == config.to_dict()
        if same and not multi_worker:
            return partial  # resumed from its backup
        if not overwrite:
            if same:
                reason = "a multi-worker run cannot resume (only the chief kept a checkpoint)"
            elif previous is None:
                reason = "it has no readable config.json"
            else:
                changed = ", ".join(sorted(k for k, v in config.to_dict().items() if previous.get(k) != v))
                reason = f"its configuration differs ({changed}); rerun it unchanged to resume"
            raise FileExistsError(f"{partial} holds an interrupted run: {reason}; "
                                  "pass --overwrite to start afresh")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json(partial / "config.json", config.to_dict())
    return partial


def train(config, overwrite=False, verbose="auto", callbacks=()):
    """Runs one training run and returns its directory.

    The model is built and compiled inside the scope of `config.strategy`
    (`vae_tf.get_strategy`); with `mirrored` on a CPU, split it first with
    `vae_tf.distribute.split_cpu(config.cpu_replicas)`. In a multi-worker cluster
    every worker calls `train`; only the chief writes the run, the others work in a
    temporary directory that is removed at the end.

    The run is built in `OUT/NAME.partial/` with `keras.callbacks.BackupAndRestore`
    state saved there after every epoch. Calling `train` again with the same config
    after an interruption resumes from the last completed epoch; with
    `config.deterministic` the result is bit-identical to an uninterrupted run.
    `config.mixed_precision` builds the model under `precision.mixed_policy_name()`.

    Args:
        config: TrainConfig.
        overwrite: bool. Replace an existing run directory of the same name (only
            once the new run has completed), or an interrupted run with a different
            configuration. Defaults to False.
        verbose: Keras `fit` verbosity. Defaults to "auto" (a progress bar).
        callbacks: extra Keras callbacks, run after the built-in ones. Training calls
            `fit` once per epoch, so each epoch begins and ends a `fit`.

    Returns:
        The run directory: config.json, history.csv, model.keras, metrics.json,
        plots/*.png and TensorBoard logs in logs/. None on a non-chief worker.

    Raises:
        TrainingDiverged: the loss became NaN or infinite; the last good checkpoint
            stays in `NAME.partial/backup`.
    """
    strategy = get_strategy(config.strategy)  # first: multi-worker needs it before any op
    policy = mixed_policy_name() if config.mixed_precision else "float32"
    chief = is_chief(strategy)
    final = pathlib.Path(config.out) / config.run_name
    if chief:
        run_dir = _prepare_run_dir(config, final, overwrite, spans_workers(strategy))
    else:
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"vae-tf-{config.run_name}-"))
    try:
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(config.seed)
        data = load_config_data(config)  # batched with the global batch size
        with strategy.scope(), dtype_policy(policy):
            model = build_model(config, data)
        images, labels = held_out_examples(data)  # one pass, for TensorBoard and the plots
        logged = (images[:8], None if labels is None else labels[:8])
        _fit(model, data, config, run_dir, logged, verbose, callbacks)
        if not chief:
            return None
        model.save(run_dir / "model.keras")
        write_json(run_dir / "metrics.json", evaluate_model(model, data, config.iw_samples))
        draw_plots(model, images, labels, read_history(run_dir), run_dir / "plots", data.class_names)
    finally:
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(run_dir / BACKUP_DIR)  # training state, not an artefact
    if final.exists():
        shutil.rmtree(final)
    run_dir.rename(final)
    log.info("run written to %s", final)
    return final


def completed_epochs(backup_dir):
    """Epochs a `BackupAndRestore` checkpoint in `backup_dir` has completed (0 if none)."""
    path = pathlib.Path(backup_dir) / "training_metadata.json"
    return json.loads(path.read_text())["epoch"] if path.is_file() else 0


def _drop_history_after(history_path, epochs):
    """Keeps the first `epochs` rows of a CSVLogger file: rows past a checkpoint exist
    when the process died between writing the history and the checkpoint."""
    if not history_path.is_file():
        return
    with open(history_path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [row for row in rows[1:] if int(row[0]) < epochs]
    if len(kept) < len(rows):
        with open(history_path, "w", newline="") as f:
            csv.writer(f).writerows(kept)


def _fit(model, data, config, run_dir, logged_examples, verbose, extra_callbacks):
    """Fits `model`, resuming from the BackupAndRestore state in `run_dir` if any."""
    backup = str(run_dir / BACKUP_DIR)
    history = run_dir / "history.csv"
    first_epoch = completed_epochs(backup)
    _drop_history_after(history, first_epoch)  # each epoch is logged once
    callbacks = [
        StopOnNaN(backup),  # first, so a NaN epoch reaches neither history nor backup
        BetaSchedule(config.beta, config.kl_warmup_epochs) if not isinstance(model, AE) else None,
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs")),
        ImageLogger(run_dir / "logs", *logged_examples),
        # After every callback that changes state during an epoch, so a backup holds it all.
        keras.callbacks.BackupAndRestore(backup, double_checkpoint=True, delete_checkpoint=False),
        RunProgbar(config.epochs) if verbose else None,
        *extra_callbacks,
    ]
    callbacks = [c for c in callbacks if c is not None]
    if first_epoch:
        log.info("resuming %s after epoch %d of %d", config.run_name, first_epoch, config.epochs)
    log.info("training %s on %s: %d parameters", config.run_name, data.source, model.count_params())
    validation = None if data.validation is None else shard_by_data(data.validation)
    # One `fit` per epoch on `data.epoch(e)`, whose batches depend on (seed, e) alone:
    # a resumed run trains on exactly the batches of an uninterrupted one.
    for epoch in range(first_epoch, config.epochs):
        model.fit(
            shard_by_data(data.epoch(epoch)),
            validation_data=validation,
            initial_epoch=epoch,
            epochs=epoch + 1,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles
        )
    log.info("final weights sha256 %s", weights_digest(model))


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

