"""One run: config -> data -> model -> fit -> evaluate -> plots, in a run directory.

The configuration is validated when it is built (`vae_tf.config.RunConfig`); `train`
then checks the run directory may be (re)used, loads the data and builds the model, and
only then creates `OUT/NAME.partial/` (`vae_tf.runs.run`), so a bad setting or missing data
leaves nothing behind. The finished run is moved to `OUT/NAME/` atomically.
"""

import contextlib
import csv
import dataclasses
import functools
import logging
import pathlib
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from vae_tf.analysis import evaluation, plots
from vae_tf.analysis.feature_classifier import weights_sha256
from vae_tf.runs import run
from vae_tf.runtime import files
from vae_tf.runs.callbacks import ImageLogger, LearningCurve, RunProgbar, StopOnNaN
from vae_tf.runs.checkpoints import VerifiedBackup
from vae_tf.runs.preemption import stop_requests
from vae_tf.config import is_conditional_kind, resolved_likelihood
from vae_tf.data import load_data
from vae_tf.runtime.distribute import get_strategy, is_chief, shard_by_data, spans_workers
from vae_tf.runtime.distribute import resolve as resolve_strategy
from vae_tf.models.factory import make_model
from vae_tf.models import registry
from vae_tf.core.optimizers import FusedAdam, StagedDecay
from vae_tf.runtime.precision import dtype_policy, float32_copy, policy_name
from vae_tf.runs.runlock import check_unlocked, run_lock

log = logging.getLogger(__name__)

PLOT_EXAMPLES = 512  # held-out examples used for plots


def load_config_data(config):
    """The data pipelines a RunConfig describes (the same splits every time)."""
    return load_data(**dataclasses.asdict(config.data), seed=config.training.seed)


def build_model(config, data):
    """The compiled model a RunConfig describes, for data's image shape and classes."""
    conditional = is_conditional_kind(config.model.kind)
    if conditional and data.num_classes is None:
        raise ValueError(f"--model {config.model.kind} needs labelled data; {data.source} has no labels")
    options = config.model.family_options()
    if "dataset_size" in {o.name for o in registry.get(config.model.kind).options}:
        options.setdefault("dataset_size", training_size(data))
    common = {**config.model.common_options(), "likelihood": resolved_likelihood(config)}
    model = make_model(
        **common,
        **options,
        input_shape=data.image_shape,
        num_classes=data.num_classes if conditional else None,
        seed=config.training.seed,
        feature_scaling=getattr(data, "feature_statistics", None),  # a table's, built into the model
    )
    # A resumed run's checkpoint replaces these biases.
    if config.training.init_output_bias and model.initialize_from_data(data.train):
        log.info("decoder output biases start at the logits of the training images' mean")
    model.compile(optimizer=make_optimizer(config.training, steps_per_pass=int(data.epoch(0).cardinality())))
    return model


def make_optimizer(training, steps_per_pass):
    """The Adam a TrainingConfig describes, its schedule counted in `steps_per_pass`."""
    learning_rate = training.lr
    if training.lr_schedule == "staged":
        learning_rate = StagedDecay(training.lr, steps_per_pass)
    return FusedAdam(learning_rate=learning_rate, epsilon=training.adam_epsilon)


def training_size(data):
    """The number of examples in one epoch of `data.train`."""
    return int(data.train.reduce(0, lambda count, batch: count + tf.shape(batch[0])[0]))


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
    """Test-set metrics in nats per example, those the model's kind asks for."""
    return evaluation.held_out_metrics(model, data.test, iw_samples)


def draw_plots(model, images, labels, history, out_dir, class_names=None, latent_sampler=None):
    """Saves every plot for `model` on held-out examples into `out_dir`; returns the paths.
    With a `latent_sampler` (a fitted `GaussianMixtureSampler`) the plots include its samples."""
    examples = images if labels is None else tf.data.Dataset.from_tensor_slices((images, labels)).batch(256)
    features = evaluation.latent_features(model, examples)[0] if model.has_latent_vector else None
    return plots.save_all(model, images, labels, history, out_dir, z=features,
                          class_names=class_names, latent_sampler=latent_sampler)


def write_projector(model, data, log_dir, max_examples):
    """Writes the Embedding Projector of `model`'s latent means of up to `max_examples`
    test examples into `log_dir` (`vae_tf.analysis.projector`); returns its config path, or None
    when `max_examples` is 0. Class names label the points when the data has them;
    factor-vector labels (dSprites) are left out, the projector takes one label per point."""
    from vae_tf.analysis.projector import write_latent_projector

    test = data.test
    if getattr(data, "factor_names", None):
        test = test.map(lambda images, factors: images)
    return write_latent_projector(log_dir, model, test, class_names=getattr(data, "class_names", None),
                                  max_examples=max_examples)


def train(config, overwrite=False, verbose="auto", callbacks=()):
    """Runs one training run and returns it.

    The model is built and compiled inside the scope of `config.runtime.strategy`
    (`vae_tf.get_strategy`); with `mirrored` on a CPU, split it first with
    `vae_tf.runtime.distribute.split_cpu(config.runtime.cpu_replicas)`. In a multi-worker
    cluster every worker calls `train`; only the chief writes the run, the others work
    in a temporary directory that is removed at the end.

    Nothing is written before the data has loaded and the model is built. One process
    owns a run (`vae_tf.runs.runlock`): a second `train` of the same name is refused. The run is
    built in `OUT/NAME.partial/` with a verified checkpoint
    (`vae_tf.runs.checkpoints.VerifiedBackup`) saved there after every epoch, every
    `config.runtime.checkpoint_every_steps` steps, and when SIGTERM or Ctrl-C arrives
    during `fit` (which then raises `vae_tf.runs.preemption.Preempted`). Calling `train`
    again with the same config after an interruption resumes from the last whole
    checkpoint, within an epoch too; with `config.runtime.deterministic` the result is
    bit-identical to an uninterrupted run.
    The model is built under `precision.policy_name(config.runtime.mixed_precision, ...)`:
    by default bfloat16 compute for conv networks on a CPU with bfloat16 instructions.
    model.keras keeps that policy; the test metrics, plots and the returned model are in
    float32 (`precision.float32_copy`), as `Run.model` and every later command are.

    Args:
        config: RunConfig.
        overwrite: bool. Replace an existing run of the same name (only once the
            new run has completed), or an interrupted run with a different
            configuration. Only a vae_tf run is ever replaced: a symlink or another
            directory is refused before training. Defaults to False.
        verbose: Keras `fit` verbosity. Defaults to "auto" (a progress bar).
        callbacks: extra Keras callbacks, run after the built-in ones. Training calls
            `fit` once per epoch, so each epoch begins and ends a `fit`.

    Returns:
        The finished `vae_tf.runs.run.Run` (path, config, model and metrics in hand), whose
        directory holds config.json, history.csv, model.keras, metrics.json,
        plots/*.png and TensorBoard logs in logs/ (with the Embedding Projector in
        logs/projector/ unless `config.training.projector_examples` is 0). None on a
        non-chief worker.

    Raises:
        Preempted: SIGTERM or SIGINT arrived during training; a checkpoint was saved.
        TrainingDiverged: the loss became NaN or infinite; the last good checkpoint
            stays in `NAME.partial/backup`.

    Example:

    >>> from vae_tf.config import RunConfig, TrainingConfig
    >>> finished = train(RunConfig(name="quick", training=TrainingConfig(epochs=1)))
    >>> finished.metrics["neg_elbo"], finished.path
    """
    # Refusals first, writing nothing; a cluster knows its chief only once its strategy runs.
    multi_worker = resolve_strategy(config.runtime.strategy) == "multi_worker"
    if not multi_worker:
        run.check_start(config, overwrite)
    strategy = get_strategy(config.runtime.strategy)  # before any op: multi-worker needs it so
    policy = policy_name(config.runtime.mixed_precision, convolutional=config.model.arch == "conv")
    chief = is_chief(strategy)
    if chief and multi_worker:
        run.check_start(config, overwrite)
    if chief:  # refused at once if another process owns the run; taken below, before writing
        check_unlocked(run.run_path(config.out, config.run_name))
    if config.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.training.seed)
    data = load_config_data(config)  # batched with the global batch size
    with strategy.scope(), dtype_policy(policy):
        model = build_model(config, data)
    images, labels = held_out_examples(data)  # one pass, for TensorBoard and the plots
    logged = (images[:8], None if labels is None else labels[:8])
    if not chief:
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"vae-tf-{config.run_name}-"))
        try:
            _fit(model, data, config, run_dir, logged, verbose, callbacks)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        return None
    final = run.run_path(config.out, config.run_name)
    final.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(final):
        # Again, owning the run: another process may have started or finished it meanwhile.
        resume = run.check_start(config, overwrite)
        run_dir = run.start(config, resume)
        _fit(model, data, config, run_dir, logged, verbose, callbacks)
        with files.writing(run_dir / "model.keras"):
            model.save(run_dir / "model.keras")  # as trained: its layers record the policy
        model = float32_copy(model)  # after training, everything runs in float32 (Run.model)
        metrics = evaluate_model(model, data, config.training.iw_samples)
        files.write_json(run_dir / "metrics.json", metrics)
        draw_plots(model, images, labels, run.read_history(run_dir), run_dir / "plots", data.class_names)
        write_projector(model, data, run_dir / "logs" / "projector", config.training.projector_examples)
        final = run.finish(run_dir)
    log.info("run written to %s", final)
    return run.Run(final, config, model, metrics)


def learning_curve(config, data, run_dir):
    """The `LearningCurve` callback writing run_dir/curve.csv, or None if not asked for."""
    training = config.training
    if not training.curve_iw_samples:
        return None
    # Stage i ends after more than 2^i passes: bit_length(epochs) stages reach past the last epoch.
    ends = StagedDecay.stage_ends(stages=training.epochs.bit_length())
    return LearningCurve(run_dir / "curve.csv", data.test, training.curve_iw_samples,
                         {e for e in ends if e <= training.epochs} | {training.epochs})


def _drop_history_after(history_path, epochs):
    """Keeps the first `epochs` rows of a CSVLogger file: rows past a checkpoint exist
    when the process died between writing the history and the checkpoint."""
    if not history_path.is_file():
        return
    with open(history_path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [row for row in rows[1:] if int(row[0]) < epochs]
    if len(kept) < len(rows) - 1:
        files.write_csv(history_path, rows[0], kept)


def _fit(model, data, config, run_dir, logged_examples, verbose, extra_callbacks):
    """Fits `model`, resuming from the checkpoint in `run_dir` if any, within an epoch
    too; SIGTERM or Ctrl-C saves a checkpoint and raises `preemption.Preempted`."""
    history = run_dir / "history.csv"
    with stop_requests() as stop, _explaining_a_lost_worker(model.distribute_strategy):
        backup = VerifiedBackup(run_dir / run.BACKUP_DIR, config.runtime.checkpoint_every_steps, stop)
        first_epoch, first_step = backup.restore(model)
        _drop_history_after(history, first_epoch)  # each epoch is logged once
        callbacks = [
            StopOnNaN(backup.backup_dir),  # first, so a NaN epoch reaches neither history nor backup
            *model.training_callbacks(config.model.beta, config.training.kl_warmup_epochs),
            keras.callbacks.CSVLogger(str(history), append=True),
            keras.callbacks.TensorBoard(str(run_dir / "logs")),
            ImageLogger(run_dir / "logs", *logged_examples) if model.input_name == "images" else None,
            learning_curve(config, data, run_dir),
            # After every callback that changes state during an epoch, so a backup holds it all.
            backup,
            RunProgbar(config.training.epochs) if verbose else None,
            *extra_callbacks,
        ]
        callbacks = [c for c in callbacks if c is not None]
        if first_epoch or first_step:
            within = f", step {first_step} of epoch {first_epoch + 1}" if first_step else ""
            log.info("resuming %s after epoch %d of %d%s", config.run_name, first_epoch, config.training.epochs,
                     within)
        log.info("training %s on %s: %d parameters, dtype policy %s", config.run_name, data.source,
                 model.count_params(), model.dtype_policy.name)
        validation = None if data.validation is None else shard_by_data(data.validation)
        for group, skip in _epoch_groups(model, data, config.training.epochs, first_epoch, first_step):
            _fit_epochs(model, data, group, skip, validation, callbacks, verbose)
    log.info("final weights sha256 %s", weights_sha256(model))


@contextlib.contextmanager
def _explaining_a_lost_worker(strategy):
    """Turns the error a worker meets when another worker of its cluster stops (within
    seconds, as its collectives abort; the first line Keras gives is "Graph execution
    error:") into one that says so, and how to resume."""
    try:
        yield
    except tf.errors.UnavailableError as error:
        if not spans_workers(strategy):
            raise
        lines = error.message.strip().splitlines()
        at = next((i for i, line in enumerate(lines) if "Collective ops is aborted" in line), len(lines) - 1)
        reason = re.sub(r"^\{\{.*?\}\}\s*", "", lines[at])
        if reason.endswith(":") and at + 1 < len(lines):  # "... unhealthy (stopped sending heartbeats):"
            reason += " " + lines[at + 1].strip()  # the task
        raise RuntimeError(f"a worker of the cluster stopped during training ({reason}); start every worker "
                           "again with the same command to resume from the chief's last checkpoint") from error


def _epoch_groups(model, data, epochs, first_epoch, first_step):
    """(epochs, steps to skip in the first) of each `fit`: one `fit` per epoch, or, where the
    model reads one iterator for a whole `fit` (under a strategy: each `fit` would make a
    new distributed iterator), one `fit` on all the epochs in turn, after one on the
    rest of an epoch left within."""
    remaining = list(range(first_epoch, epochs))
    if not remaining:
        return []
    steps = int(data.epoch(0).cardinality())
    groups = [([first_epoch], first_step)] if first_step else []
    rest = remaining[1:] if first_step else remaining
    if model.reads_one_iterator and steps > 0:
        return groups + ([(rest, 0)] if rest else [])
    return groups + [([epoch], 0) for epoch in rest]


def _fit_epochs(model, data, group, skip, validation, callbacks, verbose):
    """One `fit` on epochs `group` (consecutive), skipping the first `skip` steps of the first.

    `data.epoch(e)`'s batches depend on (seed, e) alone: a resumed run trains on exactly
    the batches of an uninterrupted one.
    """
    # A compiled training loop (never under a strategy: one epoch per `fit`) gathers the
    # epoch's batches from the examples in memory, where the data offers them.
    if model.compiles_training_loop and data.indexed_epoch is not None:
        batches, steps_per_epoch = data.indexed_epoch(group[0]).skip(skip), None
    else:
        epochs = [data.epoch(group[0]).skip(skip), *map(data.epoch, group[1:])]
        batches = shard_by_data(functools.reduce(tf.data.Dataset.concatenate, epochs))
        steps_per_epoch = int(epochs[-1].cardinality()) if len(group) > 1 else None
    model.fit(
        batches,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        initial_epoch=group[0],
        epochs=group[-1] + 1,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the pipeline shuffles
    )
