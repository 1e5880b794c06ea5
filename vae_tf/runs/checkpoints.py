"""Training checkpoints that are whole or absent: BackupAndRestore with a verified manifest.

Each backup writes the weights and training metadata to temporary names, renames them
in (the previous pair moves to `previous.*`), then writes `manifest.json` atomically: for the
newest and the previous checkpoint, the epoch and each file's size and SHA-256. The
manifest is the commit record: a checkpoint counts only if every file it lists is
present, under either name, with that size and checksum. A kill at any point therefore
leaves at least one whole checkpoint on record, and resuming loads the newest whole one,
never a file partly.
"""

import hashlib
import json
import logging
import os
import pathlib
import re
import warnings

from vae_tf.runtime import compat
from vae_tf.testing.faults import kill_point
from vae_tf.runtime.files import fsync_file
from vae_tf.runtime.files import write_json, writing

log = logging.getLogger(__name__)

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
MANIFEST = "manifest.json"
PREVIOUS = "previous."  # prefix of the previous checkpoint's files (load_weights wants .weights.h5)


class CheckpointError(OSError):
    """No checkpoint in a backup directory can be resumed from whole."""


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
    entries {"epoch": int >= 0, "files": {WEIGHTS and METADATA: {"size": int >= 0,
    "sha256": 64 hex digits}}} and nothing else, so no other file is ever read for it.

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
        if not isinstance(entry, dict) or set(entry) != {"epoch", "files"} or not _is_count(entry["epoch"]):
            raise CheckpointError(f"{where} must hold 'epoch' (an integer >= 0) and 'files' only; {fix}")
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
        (epoch, weights Path) or None when there is no checkpoint yet.

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
            return entry["epoch"], found[WEIGHTS]
    raise CheckpointError(f"{backup / WEIGHTS}: no checkpoint in {backup} verifies (truncated or changed); "
                          "pass --overwrite to start afresh")


def completed_epochs(backup_dir):
    """Epochs the newest whole checkpoint in `backup_dir` has completed (0 if none)."""
    found = newest_whole(backup_dir)
    return 0 if found is None else found[0]


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


class VerifiedBackup(compat.BackupWriter):
    """`keras.callbacks.BackupAndRestore` (per epoch, two checkpoints kept) whose
    checkpoints are verified before loading and whose optimizer state is never skipped.

    Args:
        backup_dir: str or Path. Where the checkpoints live.

    Raises (at the start of `fit`):
        CheckpointError: no whole checkpoint, or the optimizer state did not load.

    Example:

    >>> model.fit(x, epochs=3, callbacks=[VerifiedBackup("runs/r.partial/backup")])
    """

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
        self._backup = pathlib.Path(backup_dir)

    def on_train_begin(self, logs=None):
        found = newest_whole(self._backup)
        if found is None:
            return
        epoch, weights = found
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.model.load_weights(weights)
        skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
        if skipped:
            raise CheckpointError(f"{weights}: the checkpoint does not match this model "
                                  f"({skipped[0].splitlines()[0]}); pass --overwrite to start afresh")
        compat.start_fit_at(self.model, epoch)

    def write_backup(self, epoch, batch):
        backup = self._backup
        backup.mkdir(parents=True, exist_ok=True)
        new_weights = backup / f".new.{WEIGHTS}"
        new_metadata = backup / f".new.{METADATA}"
        contents = compat.weights_bytes(self.model)
        try:
            with writing(backup / WEIGHTS):
                _write_weights(new_weights, contents)
            with writing(backup / METADATA):
                new_metadata.write_text(json.dumps({"epoch": epoch, "batch": batch}))
                fsync_file(new_metadata)
        except BaseException:
            # A full disk: free what was half written, so the checkpoints before stay whole
            # and the space comes back.
            new_weights.unlink(missing_ok=True)
            new_metadata.unlink(missing_ok=True)
            raise
        entry = {"epoch": epoch, "files": {
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
        return next(e for e in read_manifest(self._backup / MANIFEST) if e["epoch"] == found[0])
