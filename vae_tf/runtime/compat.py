"""Every use of a private Keras API, in one place.

vae_tf relies on these Keras internals; each is wrapped here so a Keras upgrade that
changes one breaks this module (and `tests/runtime/test_compat.py`, which checks each
assumption directly) rather than training in some distant place:

- `keras.Model._maybe_symbolic_build`: replaced so a model built at construction
  skips the sample-batch reduction that fails under MultiWorkerMirroredStrategy.
- Adam's slot lists `_momentums` / `_velocities` and `_get_variable_index`: the
  fused update kernel writes into them.
- The saved-weights store of a layer is keyed "0", "1", ... by weight order: a layer
  that saves one more variable after its weights puts it at the next free key.
- `saving_lib.H5IOStore` and `saving_lib._save_state`: a model's `.weights.h5` bytes
  built in memory, so that vae_tf's own file I/O writes them to disk (h5py writing to
  a full disk leaves finalizers that crash the process).
- `fit`'s cached validation iterator `_eval_epoch_iterator` and its distributed dataset
  `_distributed_dataset` (TensorFlow backend): validation passes continue one iterator;
  `evaluate`'s keyword `_use_cached_eval_dataset` tells `fit`'s validation passes apart.
- `Trainer._initial_epoch`: set by a restoring callback, `fit` starts at that epoch.
- `BackupAndRestore._save_model`, `_current_epoch` and `_last_batch_seen`: the hook
  that writes a backup and the position it records (`BackupWriter`).
"""

import inspect
import io

import keras
import keras.src.backend.tensorflow.trainer
from keras.src.saving import saving_lib

# Checked by tests/runtime/test_compat.py against the installed Keras.
SYMBOLIC_BUILD_METHOD = "_maybe_symbolic_build"
FIT_VALIDATION_KEYWORD = "_use_cached_eval_dataset"  # what `fit` passes to `evaluate`
INITIAL_EPOCH = "_initial_epoch"  # the epoch `fit` starts at, set by a restoring callback
BACKUP_SAVE_METHOD = "_save_model"  # BackupAndRestore's hook writing one backup


class BuiltAtConstruction:
    """Mixin for a `keras.Model` whose weights all exist when it is constructed.

    Keras 3 (TF backend) first reduces a sample batch across replicas in
    `_maybe_symbolic_build`, which fails under MultiWorkerMirroredStrategy for
    (images, labels) batches. These models compile no Keras losses or metrics, so the
    optimizer is all that is left to build before the first step.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)


def adam_slots(optimizer, variable):
    """Returns Adam's (first moment, second moment) variables for `variable`.

    Args:
        optimizer: a built `keras.optimizers.Adam`.
        variable: one of the variables it was built for.

    Returns:
        Two `keras.Variable`s shaped like `variable`.
    """
    index = optimizer._get_variable_index(variable)
    return optimizer._momentums[index], optimizer._velocities[index]


def save_extra_variable(store, variable):
    """Saves one variable after a layer's weights, at the store's next integer key."""
    store[str(len(store))] = variable


def load_extra_variable(layer, store, variable):
    """Restores a variable saved by `save_extra_variable`, if the store has it.

    Files saved before the variable existed lack the key and load unchanged.

    Returns:
        The store without that key, for `keras.layers.Layer.load_own_variables`.
    """
    key = str(len(layer.weights))
    if key in store:
        variable.assign(store[key])
    return {k: store[k] for k in store.keys() if k != key}


def weights_bytes(model):
    """The contents of a `.weights.h5` file of `model`, built in memory.

    `model.save_weights` writes the same store through h5py's own file I/O; these bytes,
    written to a file, load with `model.load_weights`.

    Args:
        model: a built `keras.Model`.

    Returns:
        bytes, an HDF5 file.
    """
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    store.close()  # leaves `buffer` open: it was passed in, not opened by the store
    return buffer.getvalue()


class _OneIterator:
    """Stands for a distributed dataset: every `iter` continues the same iterator."""

    def __init__(self, dataset):
        self.dataset, self.iterator = dataset, None

    def __iter__(self):
        if self.iterator is None:
            self.iterator = iter(self.dataset)
        return self.iterator


def continue_validation_iterator(model):
    """Makes every validation pass of the running `fit` continue one iterator.

    Keras's `evaluate` resets `fit`'s cached validation epoch iterator before each pass,
    and the reset starts a new iterator on its `_distributed_dataset`. For an endless
    validation dataset with its length as `validation_steps` (`distribute.endless`),
    each pass continues where the last ended: the next pass of the repeated dataset,
    the batches a new iterator would give.

    Args:
        model: a `keras.Model` inside `fit`, when `fit` calls `evaluate`.
    """
    epoch_iterator = model._eval_epoch_iterator
    if not isinstance(epoch_iterator._distributed_dataset, _OneIterator):
        epoch_iterator._distributed_dataset = _OneIterator(epoch_iterator._distributed_dataset)


def is_fit_validation(evaluate_kwargs):
    """Whether `evaluate(**evaluate_kwargs)` is a validation pass of a running `fit`."""
    return bool(evaluate_kwargs.get(FIT_VALIDATION_KEYWORD))


def start_fit_at(model, epoch):
    """Makes the next `fit` of `model` start at `epoch` (0-based), whatever its
    `initial_epoch`, as a callback restoring a backup in `on_train_begin` does."""
    setattr(model, INITIAL_EPOCH, epoch)


class BackupWriter(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups are written by `write_backup`.

    Subclasses implement `write_backup(epoch, batch)`, called where Keras would save
    its own backup, with the epochs completed and the last batch seen in the epoch.
    """

    def write_backup(self, epoch, batch):
        raise NotImplementedError


def _save_model(self):
    self.write_backup(self._current_epoch, self._last_batch_seen)


setattr(BackupWriter, BACKUP_SAVE_METHOD, _save_model)


def _check_source(owner, method, *needles, fix):
    source = inspect.getsource(getattr(owner, method))
    missing = [needle for needle in needles if needle not in source]
    if missing:
        raise RuntimeError(f"keras {keras.__version__}: {owner.__name__}.{method} no longer has "
                           f"{missing}; vae_tf.runtime.compat.{fix} must change")


def check():
    """Raises RuntimeError naming the Keras internal that is missing from this Keras.

    Example:

    >>> compat.check()  # silent on a supported Keras
    """
    if not callable(getattr(keras.Model, SYMBOLIC_BUILD_METHOD, None)):
        raise RuntimeError(
            f"keras {keras.__version__}: keras.Model.{SYMBOLIC_BUILD_METHOD} is gone; "
            "vae_tf.runtime.compat.BuiltAtConstruction must change"
        )
    optimizer = keras.optimizers.Adam()
    variable = keras.Variable([0.0])
    optimizer.build([variable])
    try:
        momentum, velocity = adam_slots(optimizer, variable)
    except AttributeError as error:
        raise RuntimeError(
            f"keras {keras.__version__}: Adam slot internals changed ({error}); "
            "vae_tf.runtime.compat.adam_slots must change"
        ) from error
    if momentum.shape != variable.shape or velocity.shape != variable.shape:
        raise RuntimeError(f"keras {keras.__version__}: Adam slots no longer match their variable")
    fit_source = inspect.getsource(keras.src.backend.tensorflow.trainer.TensorFlowTrainer.fit)
    iterator_source = inspect.getsource(keras.src.backend.tensorflow.trainer.TFEpochIterator)
    if "self._eval_epoch_iterator = TFEpochIterator(" not in fit_source \
            or "self._distributed_dataset = dataset" not in iterator_source:
        raise RuntimeError(
            f"keras {keras.__version__}: fit's cached validation iterator changed; "
            "vae_tf.runtime.compat.continue_validation_iterator must change"
        )
    trainer = keras.src.backend.tensorflow.trainer.TensorFlowTrainer
    _check_source(trainer, "fit", f"{FIT_VALIDATION_KEYWORD}=True", f"self.{INITIAL_EPOCH} or initial_epoch",
                  fix="is_fit_validation / start_fit_at")
    _check_source(trainer, "evaluate", f'kwargs.pop("{FIT_VALIDATION_KEYWORD}"', fix="is_fit_validation")
    backup = keras.callbacks.BackupAndRestore
    if not callable(getattr(backup, BACKUP_SAVE_METHOD, None)):
        raise RuntimeError(f"keras {keras.__version__}: BackupAndRestore.{BACKUP_SAVE_METHOD} is gone; "
                           "vae_tf.runtime.compat.BackupWriter must change")
    _check_source(backup, "on_epoch_end", "self._current_epoch = epoch + 1", "self._last_batch_seen = 0",
                  f"self.{BACKUP_SAVE_METHOD}()", fix="BackupWriter")
    _check_source(backup, "on_train_batch_end", f"self.{BACKUP_SAVE_METHOD}()", fix="BackupWriter")
    _check_source(backup, "_should_save_on_batch", "self._last_batch_seen = batch", fix="BackupWriter")
    try:
        weights_bytes(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    except (AttributeError, TypeError, ValueError) as error:
        raise RuntimeError(
            f"keras {keras.__version__}: the weights store internals changed ({error}); "
            "vae_tf.runtime.compat.weights_bytes must change"
        ) from error
