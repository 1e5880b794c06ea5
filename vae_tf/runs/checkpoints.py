"""Training checkpoints that are whole or absent: BackupAndRestore with a verified manifest.

A checkpoint is taken at every epoch end and, within an epoch, every N steps or when a
signal asks training to stop (`vae_tf.runs.preemption`). Each writes the weights and
training metadata to temporary names, renames them in (the previous pair moves to
`previous.*`), then writes `manifest.json` atomically: for the newest and the previous
checkpoint, the epochs and steps completed and each file's size and SHA-256. The
manifest is the commit record: a checkpoint counts only if every file it lists is
present, under either name, with that size and checksum. A kill at any point therefore
leaves at least one whole checkpoint on record, and resuming loads the newest whole one,
never a file partly.

Across workers only the chief's checkpoint counts (the others train in a temporary
directory, and no filesystem is shared): on resuming, every worker takes the chief's
variables and resume point (`VerifiedBackup.restore`).
"""

import collections
import hashlib
import json
import math
import logging
import os
import pathlib
import re
import warnings

import tensorflow as tf

from vae_tf.runs.preemption import Preempted
from vae_tf.runtime import compat
from vae_tf.runtime.distribute import any_worker, broadcast_from_chief, is_chief, spans_workers
from vae_tf.testing.faults import kill_point
from vae_tf.runtime.files import fsync_file
from vae_tf.runtime.files import write_json, writing

log = logging.getLogger(__name__)

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
MANIFEST = "manifest.json"
PREVIOUS = "previous."  # prefix of the previous checkpoint's files (load_weights wants .weights.h5)
# Across workers, the steps between votes on a stop request: each vote is one small
# collective (about 2 ms on loopback, as much as a small model's step), so not every step.
STOP_VOTE_STEPS = 16


class CheckpointError(OSError):
    """No checkpoint in a backup directory can be resumed from whole."""


# `step` steps of epoch `epoch + 1` done after `epoch` whole epochs; the files, verified.
Checkpoint = collections.namedtuple("Checkpoint", "epoch step weights metadata")


def _digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(backup, names):
    return {name: {"size": (backup / name).stat().st_size, "sha256": _digest(backup / name)} for name in names}


def _find(backup, name, expected):
    """The file holding `expected` content: `name` or its previous-checkpoint twin."""
    for candidate in (backup / name, backup / (PREVIOUS + name)):
        if candidate.is_file() and candidate.stat().st_size == expected["size"] \
                and _digest(candidate) == expected["sha256"]:
            return candidate
    return None


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_manifest(path):
    """The checkpoints a manifest.json lists, newest first, each checked: one or two
    entries {"epoch": int >= 0, "step": int >= 0, "files": {WEIGHTS and METADATA:
    {"size": int >= 0, "sha256": 64 hex digits}}} and nothing else, so no other file is
    ever read for it. An entry without "step" (written before step-level checkpoints)
    is one at an epoch end.

    Raises:
        CheckpointError: naming the file and the field, for anything else.
    """
    fix = "pass --overwrite to start afresh"
    try:
        record = json.loads(pathlib.Path(path).read_text())
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable manifest ({error}); {fix}") from None
    entries = record.get("checkpoints") if isinstance(record, dict) and set(record) == {"checkpoints"} else None
    if not isinstance(entries, list) or not 1 <= len(entries) <= 2:
        raise CheckpointError(f"{path}: 'checkpoints' must be a list of one or two checkpoints, and the "
                              f"only field; {fix}")
    for i, entry in enumerate(entries):
        where = f"{path}: checkpoints[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"step"} != {"epoch", "files"} \
                or not _is_count(entry["epoch"]) or not _is_count(entry.setdefault("step", 0)):
            raise CheckpointError(f"{where} must hold 'epoch' and 'step' (integers >= 0) and 'files' only; {fix}")
        files = entry["files"]
        if not isinstance(files, dict) or set(files) != {WEIGHTS, METADATA}:
            raise CheckpointError(f"{where}.files must describe {WEIGHTS} and {METADATA} only; {fix}")
        for name, description in files.items():
            if not isinstance(description, dict) or set(description) != {"size", "sha256"} \
                    or not _is_count(description["size"]) \
                    or not re.fullmatch(r"[0-9a-f]{64}", str(description["sha256"])):
                raise CheckpointError(f"{where}.files[{name!r}] must give 'size' (an integer >= 0) and "
                                      f"'sha256' (64 hex digits); {fix}")
    return entries


def newest_whole(backup_dir):
    """The newest checkpoint in `backup_dir` whose files all verify.

    Args:
        backup_dir: str or Path. A `VerifiedBackup` directory.

    Returns:
        A `Checkpoint`, or None when there is no checkpoint yet.

    Raises:
        CheckpointError: files are there but none form a whole checkpoint.
    """
    backup = pathlib.Path(backup_dir)
    manifest_path = backup / MANIFEST
    if not manifest_path.is_file():
        if (backup / WEIGHTS).exists() or (backup / METADATA).exists():
            raise CheckpointError(f"{backup / WEIGHTS}: checkpoint has no {MANIFEST}; it cannot be verified, "
                                  "so it is not resumed from (pass --overwrite to start afresh)")
        return None
    entries = read_manifest(manifest_path)
    for entry in entries:  # newest first
        found = {name: _find(backup, name, expected) for name, expected in entry["files"].items()}
        if all(found.values()):
            if entry is not entries[0]:
                log.warning("checkpoint of epoch %d in %s fails verification; resuming from epoch %d",
                            entries[0]["epoch"], backup, entry["epoch"])
            return Checkpoint(entry["epoch"], entry["step"], found[WEIGHTS], found[METADATA])
    raise CheckpointError(f"{backup / WEIGHTS}: no checkpoint in {backup} verifies (truncated or changed); "
                          "pass --overwrite to start afresh")


def completed_epochs(backup_dir):
    """Epochs the newest whole checkpoint in `backup_dir` has completed (0 if none)."""
    found = newest_whole(backup_dir)
    return 0 if found is None else found.epoch


def _write_weights(path, contents):
    """Writes and fsyncs `contents` with Python's own file I/O, so a full disk is a plain
    OSError(ENOSPC) (h5py writing to one leaves finalizers that crash the process)."""
    half = len(contents) // 2
    with open(path, "wb") as f:
        f.write(contents[:half])
        f.flush()
        kill_point("checkpoint-write")  # half the bytes in the file
        f.write(contents[half:])
        f.flush()
        os.fsync(f.fileno())


def _metric_state(model):
    """The running values of `model`'s metrics: what a checkpoint within an epoch keeps
    so that the epoch's logged means, once resumed, are those of an uninterrupted epoch.
    Under a strategy they are on-read sums over the replicas (read with `numpy()`: `float()`
    refuses a SyncOnReadVariable), so across workers each read is a collective."""
    return {metric.name: [float(v.numpy()) for v in metric.variables] for metric in model.metrics}


def _read_metric_state(checkpoint, model):
    """The metric values a checkpoint within an epoch saved for `model`, checked."""
    try:
        saved = json.loads(checkpoint.metadata.read_text()).get("metrics")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        saved = None
    expected = {metric.name: len(metric.variables) for metric in model.metrics}
    if not isinstance(saved, dict) or {k: len(v) if isinstance(v, list) else -1 for k, v in saved.items()} \
            != expected or not all(isinstance(x, float) and math.isfinite(x) for v in saved.values() for x in v):
        raise CheckpointError(f"{checkpoint.metadata}: 'metrics' must give the finite values of {sorted(expected)}; "
                              "pass --overwrite to start afresh")
    return saved


def _take_chiefs(model, epoch, step, metrics):
    """The chief's (epoch, step, metric values) on every worker, and the chief's model and
    optimizer variables assigned on each (`broadcast_from_chief`).

    Under MultiWorkerMirroredStrategy a variable assigned outside `strategy.run` changes
    on its own worker only: loaded on the chief alone, a checkpoint would leave the other
    workers training from their own weights. Metric values go too: every worker must
    assign the same ones, as each keeps its share of an on-read sum.
    """
    state = model.variables + model.optimizer_variables  # every optimizer's (a FactorVAE has two)
    sizes = {metric.name: len(metric.variables) for metric in model.metrics}
    flat = [value for name in sizes for value in metrics[name]] if metrics else [0.0] * sum(sizes.values())
    point, values, *chiefs = broadcast_from_chief(
        model.distribute_strategy, [tf.constant([epoch, step], tf.int64), tf.constant(flat, tf.float64), *state])
    for variable, value in zip(state, chiefs):
        variable.assign(value)
    epoch, step = (int(n) for n in point.numpy())
    values = iter(values.numpy().tolist())
    return epoch, step, {name: [next(values) for _ in range(size)] for name, size in sizes.items()} if step else None


class VerifiedBackup(compat.BackupWriter):
    """`keras.callbacks.BackupAndRestore` (two checkpoints kept) whose checkpoints are
    verified before loading, whose optimizer state is never skipped, and which also saves
    within an epoch: every `every_steps` steps, and when `stop` is set.

    A checkpoint within an epoch records the steps done and the metrics' running values.
    `vae_tf.runs.training` resumes from one on the rest of the epoch's batches (`restore`
    gives the point); a plain `fit` restarts that epoch.

    Args:
        backup_dir: str or Path. Where the checkpoints live.
        every_steps: int. Also save after every this many training steps of an epoch;
            0 saves at epoch ends only. Defaults to 0.
        stop: a `vae_tf.runs.preemption.StopRequest` or None. Once it is set, the next
            end of a training execution saves a checkpoint and raises `Preempted`; under
            a multi-worker strategy, every worker does so at the next multiple of
            `STOP_VOTE_STEPS` steps (or the epoch's end), whichever worker was asked.

    Raises (at `restore`, or the start of `fit`):
        CheckpointError: no whole checkpoint, or the optimizer state did not load.

    Example:

    >>> model.fit(x, epochs=3, callbacks=[VerifiedBackup("runs/r.partial/backup")])
    """

    def __init__(self, backup_dir, every_steps=0, stop=None):
        super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
        self._backup = pathlib.Path(backup_dir)
        self.every_steps = every_steps
        self.stop = stop
        self._restored = False
        self._resumed_within = None  # (epoch, step, metric values) to take up as that epoch begins
        self._epoch = self._steps_before = self._saved_step = 0

    def restore(self, model):
        """Loads the newest whole checkpoint into `model`, once.

        Across workers (`spans_workers`) every worker calls this at the same point, as
        with any collective: the chief loads its checkpoint, and every worker then takes
        the chief's variables, metric values and resume point (`_take_chiefs`).

        Returns:
            (epoch, step): the epochs completed and the steps of the next one done, (0, 0)
            without a checkpoint.
        """
        self.set_model(model)
        self._restored = True
        across = spans_workers(model.distribute_strategy)
        if across and model.optimizer is not None and not model.optimizer.built:
            # Creating variables there is a collective: every worker, not the chief alone.
            with model.distribute_strategy.scope():
                model.optimizer.build(model.trainable_variables)
        found = newest_whole(self._backup)
        epoch, step, metrics = (0, 0, None) if found is None else self._load(found)
        if across:
            epoch, step, metrics = _take_chiefs(model, epoch, step, metrics)
        if step:
            self._resumed_within = epoch, step, metrics
        return epoch, step

    def _load(self, found):
        """Loads the `Checkpoint` `found` into the model; returns its (epoch, step, metric
        values), the values None at an epoch's end."""
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        metrics = _read_metric_state(found, model) if found.step else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(found.weights)
        skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
        if skipped:
            raise CheckpointError(f"{found.weights}: the checkpoint does not match this model "
                                  f"({skipped[0].splitlines()[0]}); pass --overwrite to start afresh")
        return found.epoch, found.step, metrics

    def on_train_begin(self, logs=None):
        if not self._restored:
            compat.start_fit_at(self.model, self.restore(self.model)[0])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._steps_before = epoch, 0
        if self._resumed_within and self._resumed_within[0] == epoch:
            _, self._steps_before, values = self._resumed_within
            for metric in self.model.metrics:  # reset by `fit` just before this
                for variable, value in zip(metric.variables, values[metric.name]):
                    variable.assign(value)
        self._resumed_within = None
        self._saved_step = self._steps_before

    def on_train_batch_end(self, batch, logs=None):
        kill_point("train-batch")  # the N-th batch of this process done, before any checkpoint at it
        # With several steps per execution Keras reports the execution's last step, which
        # can lie past the epoch's end: the epoch end then saves.
        steps = self.params.get("steps")
        done = batch + 1 if steps is None else min(batch + 1, steps)
        if steps is not None and done == steps:
            return
        step = self._steps_before + done
        if self._stop_agreed(step):
            self.write_backup(self._epoch, 0, step=step)
            raise Preempted(self._stop_reason(), self._epoch, step, self._kept_dir())
        if self.every_steps and step // self.every_steps > self._saved_step // self.every_steps:
            self.write_backup(self._epoch, 0, step=step)
            self._saved_step = step

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # saves, through `write_backup`
        if self._stop_agreed(None):
            raise Preempted(self._stop_reason(), epoch + 1, 0, self._kept_dir())

    def _stop_agreed(self, step):
        """Whether to stop after `step` (None: at the epoch's end). Across workers, every
        worker votes at the same steps, so a notice to any one stops all at one step."""
        asked = self.stop is not None and self.stop.is_set()
        strategy = self.model.distribute_strategy
        if not spans_workers(strategy):
            return asked
        return (step is None or step % STOP_VOTE_STEPS == 0) and any_worker(strategy, asked)

    def _kept_dir(self):
        """Where the checkpoint that counts is: here, or on the chief (None)."""
        return self._backup if is_chief(self.model.distribute_strategy) else None

    def _stop_reason(self):
        asked = self.stop is not None and self.stop.is_set()
        return self.stop.signal_name if asked else "another worker's notice"

    def write_backup(self, epoch, batch, step=0):
        """Saves a checkpoint after `epoch` epochs and `step` steps of the next one
        (`batch`, Keras's last batch seen, is not needed)."""
        backup = self._backup
        backup.mkdir(parents=True, exist_ok=True)
        new_weights = backup / f".new.{WEIGHTS}"
        new_metadata = backup / f".new.{METADATA}"
        contents = compat.weights_bytes(self.model)
        metadata = {"epoch": epoch, "step": step, "metrics": _metric_state(self.model) if step else {}}
        try:
            with writing(backup / WEIGHTS):
                _write_weights(new_weights, contents)
            with writing(backup / METADATA):
                new_metadata.write_text(json.dumps(metadata))
                fsync_file(new_metadata)
        except BaseException:
            # A full disk: free what was half written, so the checkpoints before stay whole
            # and the space comes back.
            new_weights.unlink(missing_ok=True)
            new_metadata.unlink(missing_ok=True)
            raise
        entry = {"epoch": epoch, "step": step, "files": {
            WEIGHTS: _describe(backup, [new_weights.name])[new_weights.name],
            METADATA: _describe(backup, [new_metadata.name])[new_metadata.name],
        }}
        previous = self._current_entry()
        # The manifest still lists the current checkpoint, found under either name meanwhile.
        for name in (WEIGHTS, METADATA):
            if (backup / name).exists():
                os.replace(backup / name, backup / (PREVIOUS + name))
        kill_point("checkpoint")  # the worst moment: no file under the newest name
        os.replace(new_weights, backup / WEIGHTS)
        os.replace(new_metadata, backup / METADATA)
        write_json(backup / MANIFEST, {"checkpoints": [entry] + ([previous] if previous else [])})

    def _current_entry(self):
        """The manifest's newest entry, if its files verify (it becomes the previous one)."""
        try:
            found = newest_whole(self._backup)
        except CheckpointError:
            return None
        if found is None:
            return None
        return next(e for e in read_manifest(self._backup / MANIFEST)
                    if (e["epoch"], e["step"]) == (found.epoch, found.step))
