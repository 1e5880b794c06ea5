"""Training callbacks: TensorBoard image summaries, the NaN stop, a progress bar for
training that calls `fit` once per epoch, and the held-out learning curve."""

import csv
import math
import pathlib

import keras
import numpy as np
import tensorflow as tf

from vae_tf.analysis.evaluation import held_out_metrics, model_labels
from vae_tf.runtime import files


class ImageLogger(keras.callbacks.Callback):
    """Writes reconstructions (and, for a VAE, prior samples) to TensorBoard each epoch.

    Args:
        log_dir: str. TensorBoard directory; images go to `log_dir/images`.
        images: array. A few held-out images to reconstruct.
        labels: array or None. Their labels (needed by a CVAE).
        num_samples: int. Prior samples per epoch for VAE/CVAE. Defaults to 16.
    """

    def __init__(self, log_dir, images, labels=None, num_samples=16):
        super().__init__()
        self.log_dir = str(log_dir)
        self.images = np.asarray(images, "float32")
        self.labels = labels
        self.num_samples = num_samples
        self.writer = None

    def on_train_begin(self, logs=None):
        if self.writer is None:  # one writer across `fit` calls
            self.writer = tf.summary.create_file_writer(f"{self.log_dir}/images")

    def on_epoch_end(self, epoch, logs=None):
        labels = model_labels(self.model, self.labels)
        reconstructions = np.asarray(self.model.reconstruct(self.images, labels))
        with self.writer.as_default():
            pairs = np.concatenate([self.images, reconstructions], axis=2)
            tf.summary.image("reconstructions", pairs, step=epoch, max_outputs=len(pairs))
            if self.model.can_sample:
                samples = np.asarray(self.model.sample(self.num_samples, seed=epoch))
                tf.summary.image("samples", samples, step=epoch, max_outputs=self.num_samples)
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.flush()


class TrainingDiverged(RuntimeError):
    """The training loss stopped being finite."""


class StopOnNaN(keras.callbacks.Callback):
    """Stops training with `TrainingDiverged` at the end of an epoch whose loss is not finite.

    It raises instead of setting `stop_training`, so no later callback runs for that
    epoch: list it before `CSVLogger` and `BackupAndRestore`, and the history and the
    last good checkpoint stay as they were.

    Args:
        checkpoint_dir: str or None. Where the last good checkpoint is, for the message.
    """

    def __init__(self, checkpoint_dir=None):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        kept = (f"the checkpoint after epoch {epoch} is kept in {self.checkpoint_dir}"
                if epoch and self.checkpoint_dir else "no epoch had completed")
        raise TrainingDiverged(
            f"training stopped: the loss became {float(loss)} in epoch {epoch + 1}; {kept} "
            "(try a lower --lr)"
        )


class RunProgbar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, numbering epochs out of the whole run ("Epoch 3/10") when
    training calls `fit` once per epoch (each such `fit` alone would say "Epoch 3/3"),
    and never counting past the epoch's steps.

    With `steps_per_execution=k`, Keras reports the end of each execution as the step
    `begin + k - 1`, also for the epoch's last execution when it runs fewer than k
    steps: 422 steps with k = 32 would show "448/422" and a negative time left.

    Args:
        epochs: int. Epochs of the whole run.

    Example:

    >>> progbar = RunProgbar(10)
    >>> for epoch in range(10):
    ...     model.fit(data, initial_epoch=epoch, epochs=epoch + 1, callbacks=[progbar])
    """

    def __init__(self, epochs):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.run_epochs

    def on_train_batch_end(self, batch, logs=None):
        if self.target is not None:  # None: a dataset of unknown length
            batch = min(batch, self.target - 1)
        super().on_train_batch_end(batch, logs)


class LearningCurve(keras.callbacks.Callback):
    """After each of `epochs`, the held-out metrics (`evaluation.held_out_metrics`) as one
    row of a CSV file: test log-likelihood against passes, the IWAE paper's figure.

    Rows are rewritten atomically with every new one; a row for an epoch at or after the
    current one (written before a kill, the epoch then run again on resume) is replaced.

    Args:
        path: str or Path. The CSV file.
        data: the held-out dataset.
        iw_samples: int. Importance samples of the log-likelihood estimate.
        epochs: iterable of int. The epochs (counted from 1) after which to evaluate.
    """

    def __init__(self, path, data, iw_samples, epochs):
        super().__init__()
        self.path = pathlib.Path(path)
        self.data = data
        self.iw_samples = iw_samples
        self.epochs = set(epochs)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 not in self.epochs:
            return
        metrics = {"epoch": epoch + 1, **held_out_metrics(self.model, self.data, self.iw_samples)}
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["epoch"]) < epoch + 1]
        files.write_csv(self.path, list(metrics), [[row[k] for k in metrics] for row in rows]
                        + [list(metrics.values())])
