"""A run directory: create or resume it, finish it atomically, read it back.

A run lives at `OUT/NAME/` and is built in `OUT/NAME.partial/`:

    config.json   the RunConfig (the run marker: only such a directory is ever replaced)
    history.csv   one row per epoch
    model.keras   the trained model
    metrics.json  test metrics, nats per example
    latent_gmm.npz  a latent sampler fitted after training (`vae-tf fit-sampler`), if any
    plots/, logs/ figures and TensorBoard logs
    backup/       BackupAndRestore state while training (NAME.partial only)

Names are one path component (`check_name`), so a run never lands outside the `OUT`
the user named. Every file is written through `atomic_write`.
"""

import csv
import json
import math
import os
import pathlib
import shutil

from vae_tf.config import read_config
from vae_tf.runtime.files import atomic_write, temporary_directory, write_json
from vae_tf.runtime.names import check_name

BACKUP_DIR = "backup"  # BackupAndRestore state inside NAME.partial/
SAMPLER_FILE = "latent_gmm.npz"  # the run's fitted GaussianMixtureSampler


def read_history(run_dir):
    """The per-epoch history of a run as {column: [values]}, or None before the first epoch."""
    path = pathlib.Path(run_dir) / "history.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    # Keras' CSVLogger writes NA for a column an epoch lacks (val_* without a validation split).
    columns = [key for key in (rows[0] if rows else ()) if key != "epoch" and any(r[key] != "NA" for r in rows)]
    return {key: [float("nan") if r[key] == "NA" else float(r[key]) for r in rows] for key in columns} if rows else None


def read_metrics(path):
    """A metrics.json written by vae_tf: a JSON object of finite numbers, checked.

    Raises:
        ValueError: naming the file and the field, for anything else.
    """
    fix = "rerun vae-tf evaluate on the run to rewrite it"
    try:
        values = json.loads(pathlib.Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}); {fix}") from None
    if not isinstance(values, dict) or not values:
        raise ValueError(f"{path}: not a JSON object of metrics; {fix}")
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{path}: metric {name!r} must be a finite number, got {value!r}; {fix}")
    return values


def read_curve(run_dir):
    """A run's learning curve (`--curve-iw-samples`) as (epochs, test -log p(x) in nats,
    importance samples), or None if it has none.

    Raises:
        ValueError: naming the file, for a curve.csv that is not one.
    """
    path = pathlib.Path(run_dir) / "curve.csv"
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        epochs = [int(r["epoch"]) for r in rows]
        nats = [-float(r["iw_log_likelihood"]) for r in rows]
        samples = {int(r["iw_samples"]) for r in rows}
    except (KeyError, TypeError, ValueError, csv.Error) as error:
        raise ValueError(f"{path}: not a learning curve written by vae_tf ({error!r})") from None
    if not rows or len(samples) != 1 or epochs != sorted(set(epochs)) or not all(map(math.isfinite, nats)):
        raise ValueError(f"{path}: not a learning curve written by vae_tf (empty, mixed sample counts, "
                         "epochs out of order or non-finite values)")
    return epochs, nats, samples.pop()


class Run:
    """A finished run directory and what it holds, read on first use.

    `vae_tf.runs.training.train` returns one with the trained model and metrics already in
    hand; `Run(path)` reads an existing run back.

    Args:
        path: str or Path. The run directory.
        config: RunConfig or None. Read from config.json when None.
        model: keras.Model or None. Loaded from model.keras on first use when None.
        metrics: dict or None. Read from metrics.json on first use when None.

    Example:

    >>> run = Run("runs/vae-mlp-fashion_mnist")
    >>> run.config.model.latent_dim, run.metrics["neg_elbo"]
    """

    def __init__(self, path, config=None, model=None, metrics=None):
        self.path = pathlib.Path(path)
        self.config = read_config(self.path) if config is None else config
        self._model, self._metrics = model, metrics

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    @property
    def name(self):
        return self.path.name

    @property
    def model(self):
        """The trained model (model.keras, loaded with Keras' safe_mode on), in float32:
        a model trained in mixed precision is evaluated, scored, calibrated and exported
        in float32 (`vae_tf.runtime.precision.float32_copy`), so that a calibrated threshold
        and the exported SavedModel see the same scores."""
        if self._model is None:
            import keras

            from vae_tf.runtime.precision import float32_copy

            path = self.path / "model.keras"
            if not path.is_file():
                raise FileNotFoundError(f"{self.path}: no model.keras (the run did not finish)")
            self._model = float32_copy(keras.saving.load_model(path, safe_mode=True))  # untrusted files stay data
        return self._model

    @property
    def metrics(self):
        """Test metrics in nats per example (metrics.json)."""
        if self._metrics is None:
            path = self.path / "metrics.json"
            if not path.is_file():
                raise FileNotFoundError(f"{self.path}: no metrics.json (the run did not finish)")
            self._metrics = read_metrics(path)
        return self._metrics

    def history(self):
        """{column: [per-epoch values]} from history.csv, or None."""
        return read_history(self.path)

    @property
    def latent_sampler(self):
        """The `GaussianMixtureSampler` fitted to this run's codes, or None if none was."""
        from vae_tf.analysis.samplers import GaussianMixtureSampler

        path = self.path / SAMPLER_FILE
        return GaussianMixtureSampler.load(path) if path.is_file() else None

    def write_latent_sampler(self, sampler):
        """Stores `sampler` in the run (atomically), replacing an earlier one; returns its Path."""
        return atomic_write(self.path / SAMPLER_FILE, sampler.write_npz)

    def write_metrics(self, metrics):
        """Replaces metrics.json (atomically) and the metrics in hand."""
        write_json(self.path / "metrics.json", metrics)
        self._metrics = dict(metrics)


def _check_inside(path, root):
    """Raises unless `path` (a symlink counts as outside) resolves strictly inside `root`."""
    root = pathlib.Path(root).resolve()
    resolved = pathlib.Path(path).resolve()
    if pathlib.Path(path).is_symlink():
        raise ValueError(f"{path} is a symbolic link; vae_tf does not replace or write through links")
    if resolved == root or not resolved.is_relative_to(root):
        raise ValueError(f"{path} resolves to {resolved}, outside {root}")


def run_path(out, name):
    """`OUT/NAME` after checking the name and that the path lies inside `OUT`.

    Args:
        out: str or Path. The runs root.
        name: str. The run name (`check_name`).

    Returns:
        The Path `out/name` (not resolved).
    """
    path = pathlib.Path(out) / check_name(name)
    _check_inside(path, out)
    return path


def is_run(path):
    """Whether `path` is a vae_tf run: a real directory whose config.json reads as one."""
    path = pathlib.Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        read_config(path)
    except (OSError, ValueError):
        return False
    return True


def check_replaceable(path, root):
    """Raises unless `path`, inside `root`, is a vae_tf run that may be deleted."""
    _check_inside(path, root)
    if not is_run(path):
        raise ValueError(f"{path} is not a vae_tf run (no vae_tf config.json); remove it yourself")


def remove_run(path, root):
    """Deletes the run at `path` after checking, at this moment, that it is one inside `root`."""
    check_replaceable(path, root)
    shutil.rmtree(path)


def _aside(final):
    """Where the old run waits while a new one replaces it (hidden: no run can take the name)."""
    return final.with_name(f".{final.name}.replaced")


def recover(final):
    """Completes or undoes a replacement that was killed midway.

    A kill after the old run moved aside leaves no `final`: the old run is put back.
    A kill after the new run moved in leaves the old one aside: it is deleted.
    """
    final = pathlib.Path(final)
    aside = _aside(final)
    if not aside.exists():
        return
    if final.exists():
        remove_run(aside, final.parent)
    else:
        check_replaceable(aside, final.parent)
        os.rename(aside, final)


def check_start(config, overwrite=False):
    """Checks, writing nothing, that a run of `config` may start; returns whether it resumes.

    A `NAME.partial/` holding the same configuration is an interrupted run and is
    resumed (in a multi-worker cluster the chief resumes it, and every worker takes the
    chief's state: `vae_tf.runs.training.train`); one with another configuration is
    refused unless `overwrite`. An existing `NAME/` is refused unless `overwrite`, and
    even then must be a vae_tf run (not a symlink, not some other directory).

    Args:
        config: RunConfig.
        overwrite: bool. Allow replacing a run or an interrupted run. Defaults to False.

    Returns:
        True if the run resumes from `NAME.partial/`.
    """
    final = run_path(config.out, config.run_name)
    if final.exists() or final.is_symlink() or _aside(final).exists():
        if not overwrite:
            raise FileExistsError(f"{final} already exists: pass --overwrite or choose another --name")
        check_replaceable(_aside(final) if not final.exists() else final, final.parent)
    partial = partial_path(final)
    if not (partial.exists() or partial.is_symlink()):
        return False
    try:
        previous = read_config(partial).to_dict()
    except (FileNotFoundError, ValueError):
        previous = None
    same = previous == config.to_dict() and not partial.is_symlink()
    if same:
        return True
    if not overwrite:
        if previous is None:
            reason = "it has no readable config.json"
        else:
            reason = f"its configuration differs ({', '.join(_changed(previous, config.to_dict()))}); " \
                     "rerun it unchanged to resume"
        raise FileExistsError(f"{partial} holds an interrupted run: {reason}; pass --overwrite to start afresh")
    check_replaceable(partial, final.parent)
    return False


def _changed(old, new, prefix=""):
    """The settings (section.field) whose values differ between two config dicts."""
    keys = sorted(set(old) | set(new))
    changed = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(prefix + key)
    return changed


def partial_path(final):
    """`OUT/NAME.partial`, where the run `OUT/NAME` is built."""
    return final.with_name(final.name + ".partial")


def start(config, resume):
    """Returns `OUT/NAME.partial/` to train in: the interrupted one if `resume`, else a
    new one, created whole (config.json included) so every `NAME.partial/` is a run.
    Call `check_start` first; an old partial it allowed to replace is deleted here."""
    final = run_path(config.out, config.run_name)
    partial = partial_path(final)
    if resume:
        return partial
    recover(final)  # a replacement killed midway
    if partial.exists() or partial.is_symlink():
        remove_run(partial, final.parent)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_directory(final.parent, prefix=f".{final.name}.new-")
    try:
        write_json(staging / "config.json", config.to_dict())
        os.rename(staging, partial)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return partial


def finish(partial):
    """Moves the trained `NAME.partial/` to `NAME/` (replacing a run there) and returns
    the final Path; the training state in backup/ is not an artefact and is deleted."""
    partial = pathlib.Path(partial)
    shutil.rmtree(partial / BACKUP_DIR, ignore_errors=True)
    final = partial.with_name(partial.name.removesuffix(".partial"))
    replace_run(partial, final)
    return final


def replace_run(partial, final):
    """Moves the finished run `partial` to `final`, replacing a run already there.

    The old run is renamed aside, the new one renamed in, then the old one deleted:
    a crash at any point leaves a whole run (`recover` tidies up after a kill).

    Args:
        partial: Path. The finished run, beside `final`.
        final: Path. Where the run goes.
    """
    partial, final = pathlib.Path(partial), pathlib.Path(final)
    root = final.parent
    recover(final)
    if not (final.exists() or final.is_symlink()):
        os.rename(partial, final)
        return
    check_replaceable(final, root)  # again: the directory may have changed since training began
    aside = _aside(final)
    os.rename(final, aside)
    try:
        os.rename(partial, final)
    except BaseException:
        os.rename(aside, final)
        raise
    remove_run(aside, root)
