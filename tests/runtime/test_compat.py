"""Each Keras internal vae_tf relies on, checked directly: a Keras upgrade that changes
one fails here, by name, instead of somewhere inside training."""

import inspect

import keras
import numpy as np
import pytest

from vae_tf.runtime import compat
from vae_tf.core.layers import Sampling


def test_check_passes_on_the_installed_keras():
    compat.check()


def test_symbolic_build_hook_exists_with_the_signature_we_override():
    hook = getattr(keras.Model, compat.SYMBOLIC_BUILD_METHOD)
    assert list(inspect.signature(hook).parameters) == ["self", "iterator", "data_batch"]
    assert compat.SYMBOLIC_BUILD_METHOD in compat.BuiltAtConstruction.__dict__


def test_adam_slots_are_the_moments_adam_updates():
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.Adam(learning_rate=0.1, beta_1=0.9, beta_2=0.99)
    optimizer.build([variable])
    gradient = np.array([1.0, -2.0, 3.0], "float32")
    optimizer.apply_gradients([(gradient, variable)])
    momentum, velocity = compat.adam_slots(optimizer, variable)
    np.testing.assert_allclose(np.asarray(momentum), 0.1 * gradient, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(velocity), 0.01 * gradient**2, rtol=1e-6)


def test_extra_variable_sits_after_the_weights_in_the_store(tmp_path):
    """Sampling saves its noise state after its weights; a reloaded layer continues the draws."""
    def model():
        z_mean, z_log_var = keras.Input((3,)), keras.Input((3,))
        return keras.Model([z_mean, z_log_var], Sampling(seed=5, name="s")([z_mean, z_log_var]))

    inputs = [np.zeros((2, 3), "float32")] * 2
    first = model()
    first(inputs)  # advance the stream once
    first.save_weights(tmp_path / "w.weights.h5")
    expected = np.asarray(first(inputs))
    second = model()
    second.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(np.asarray(second(inputs)), expected)
    store = {}
    first.get_layer("s").save_own_variables(store)
    assert sorted(store) == ["0", "1"]  # beta, then the seed state
    assert np.asarray(store["1"]).shape == np.asarray(first.get_layer("s").seed_generator.state).shape


def test_old_files_without_the_extra_variable_still_load():
    layer = Sampling(beta=0.3)
    untouched = np.asarray(layer.seed_generator.state).copy()
    rest = compat.load_extra_variable(layer, {"0": np.float32(2.0)}, layer.seed_generator.state)
    assert list(rest) == ["0"]
    np.testing.assert_array_equal(np.asarray(layer.seed_generator.state), untouched)


def test_check_names_a_missing_internal(monkeypatch):
    owner = next(c for c in keras.Model.__mro__ if compat.SYMBOLIC_BUILD_METHOD in c.__dict__)
    monkeypatch.delattr(owner, compat.SYMBOLIC_BUILD_METHOD)
    with pytest.raises(RuntimeError, match="_maybe_symbolic_build"):
        compat.check()


def test_weights_bytes_load_with_load_weights(tmp_path):
    """The in-memory store, written to a file by hand, is a .weights.h5 file that
    `load_weights` reads whole: the weights and the optimizer state come back."""
    def model():
        built = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        built.compile(optimizer="adam", loss="mse")
        return built

    trained = model()
    trained.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    path = tmp_path / "w.weights.h5"
    path.write_bytes(compat.weights_bytes(trained))
    fresh = model()
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(path)
    for a, b in zip(trained.get_weights() + [np.asarray(v) for v in trained.optimizer.variables],
                    fresh.get_weights() + [np.asarray(v) for v in fresh.optimizer.variables], strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(np.asarray(fresh.optimizer.iterations)) == 1


def test_check_names_a_missing_weights_store_internal(monkeypatch):
    from keras.src.saving import saving_lib

    monkeypatch.delattr(saving_lib, "_save_state")
    with pytest.raises(RuntimeError, match="compat.weights_bytes must change"):
        compat.check()


def test_start_fit_at_makes_fit_start_at_that_epoch():
    """What a restoring callback relies on: `fit` begins at the epoch it sets."""
    class Restore(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            compat.start_fit_at(self.model, 2)

    seen = []
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((2, 1)), np.ones((2, 1)), epochs=4, verbose=0,
              callbacks=[Restore(), keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))])
    assert seen == [2, 3]


def test_fit_validation_is_told_apart_from_a_users_evaluate():
    calls = []

    class Recording(keras.Sequential):
        def evaluate(self, *args, **kwargs):
            calls.append(compat.is_fit_validation(kwargs))
            return super().evaluate(*args, **kwargs)

    model = Recording([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    data = (np.ones((2, 1)), np.ones((2, 1)))
    model.fit(*data, validation_data=data, epochs=1, verbose=0)
    model.evaluate(*data, verbose=0)
    assert calls == [True, False]


def test_backup_writer_writes_where_keras_saves_with_the_position(tmp_path):
    written = []

    class Recording(compat.BackupWriter):
        def write_backup(self, epoch, batch):
            written.append((epoch, batch))

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 1)), np.ones((4, 1)), batch_size=2, epochs=2, verbose=0,
              callbacks=[Recording(str(tmp_path))])
    assert written == [(1, 0), (2, 0)]  # epochs completed, no batch into the next
    per_batch = []

    class EveryBatch(compat.BackupWriter):
        def write_backup(self, epoch, batch):
            per_batch.append((epoch, batch))

    model.fit(np.ones((4, 1)), np.ones((4, 1)), batch_size=2, epochs=1, verbose=0,
              callbacks=[EveryBatch(str(tmp_path / "b"), save_freq=1)])
    assert per_batch[:2] == [(0, 0), (0, 1)]


@pytest.mark.parametrize("owner, name, fix", [
    (lambda: keras.callbacks.BackupAndRestore, compat.BACKUP_SAVE_METHOD, "BackupWriter"),
    (lambda: __import__("keras.src.backend.tensorflow.trainer", fromlist=["x"]).TensorFlowTrainer,
     "fit", "start_fit_at"),
])
def test_check_names_a_missing_backup_or_fit_internal(owner, name, fix, monkeypatch):
    cls = owner()
    if name == "fit":
        source = inspect.getsource(cls.fit).replace(f"self.{compat.INITIAL_EPOCH}", "self.elsewhere")
        monkeypatch.setattr(inspect, "getsource",
                            lambda obj, _real=inspect.getsource: source if obj is cls.fit else _real(obj))
    else:
        monkeypatch.delattr(cls, name)
    with pytest.raises(RuntimeError, match=fix):
        compat.check()
