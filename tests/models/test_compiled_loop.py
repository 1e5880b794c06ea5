"""The compiled training loop (vae_tf.models.loops.compiled_loop): when it is used, and that it
trains exactly as Keras's loop does, checks included."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.data import IndexedBatches
from vae_tf.models.factory import make_model
from vae_tf.models import fitting
from vae_tf.models.loops import checks

from helpers import METRICS_RTOL, WEIGHTS_ATOL



def mlp(kind="vae", **options):
    extra = {"num_classes": 10} if kind == "cvae" else {}
    return make_model(kind, "mlp", (28, 28, 1), 4, hidden_units=(32,), seed=0, **extra, **options)


def _saved(model, directory):
    path = directory / "model.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("avx512", [True, False])
def test_auto_compiles_the_loop_of_dense_models_on_avx512_cpus(avx512, monkeypatch):
    monkeypatch.setattr(fitting, "cpu_has_avx512", lambda: avx512)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    model = mlp()
    model.compile()
    assert model.compiles_training_loop == avx512


def test_dense_models_compile_their_loop_and_others_do_not(tmp_path):
    model = mlp()
    model.compile(jit_compile=True)
    assert model.compiles_training_loop
    for options in (dict(jit_compile=False), dict(steps_per_execution=1)):
        model.compile(**options)
        assert not model.compiles_training_loop, options
    model.compile(jit_compile=True)
    reloaded = keras.saving.load_model(_saved(model, tmp_path))
    assert reloaded.compiles_training_loop
    conv = make_model("vae", "conv", (28, 28, 1), 2, filters=(4,), dense_units=8)
    conv.compile(jit_compile=True)
    assert not conv.compiles_training_loop


@pytest.mark.parametrize("kind", ["vae", "cvae", "iwae", "wae", "infovae"])
def test_the_compiled_loop_trains_as_keras_loop_does(kind, real_batch):
    """500 images in batches of 32 (15 full and one of 20), 4 steps per execution: full
    and partial executions, and a batch of another shape."""
    images, labels = real_batch[0][:500], real_batch[1][:500].astype("int32")
    data = (images, labels) if kind == "cvae" else (images,)
    results = []
    for jit_compile in (True, False):
        keras.utils.set_random_seed(0)  # the initial weights
        model = mlp(kind)
        # SGD: Adam's first steps move a weight by ~lr whatever the size of its gradient,
        # so a rounding difference in a gradient near 0 changes the weight by up to lr.
        model.compile(optimizer=keras.optimizers.SGD(1e-3), steps_per_execution=4, jit_compile=jit_compile)
        assert model.compiles_training_loop == jit_compile
        history = model.fit(*data, epochs=3, batch_size=32, shuffle=False, verbose=0).history
        assert int(model.optimizer.iterations) == 3 * 16  # the padding is never run
        results.append((history, model.get_weights()))
    (compiled, compiled_weights), (plain, plain_weights) = results
    assert compiled["loss"][-1] < compiled["loss"][0]
    for name in plain:
        # The MMD estimate is a difference of kernel means that reaches 0: an absolute tolerance.
        atol = 1e-6 if name == "mmd" else 0
        np.testing.assert_allclose(compiled[name], plain[name], rtol=METRICS_RTOL, atol=atol, err_msg=name)
    for a, b in zip(compiled_weights, plain_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=METRICS_RTOL, atol=WEIGHTS_ATOL)


def test_a_bad_batch_stops_the_compiled_loop_before_any_step_of_it(real_batch):
    images = real_batch[0][:256].copy()
    images[100, 3, 4, 0] = np.nan  # the 4th batch of 32: row 4
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(32)  # checked in the loop, not at the door
    model = mlp()
    model.compile(steps_per_execution=8, jit_compile=True)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"^images contain NaN or infinite values \(first at index \[4 3 4 0\] of a batch\)$"):
        model.fit(dataset, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_compiled_loop_reads_a_dataset_of_unknown_size_to_its_end(real_batch):
    """A dataset whose size Keras cannot know (a filter) ends each epoch by running out;
    its elements carry strings the model ignores, which stay out of the XLA program."""
    images = real_batch[0][:300]
    names = np.array([f"image {i}" for i in range(300)])
    dataset = tf.data.Dataset.from_tensor_slices((images, names)).filter(lambda x, name: True).batch(64)
    histories = []
    for jit_compile in (True, False):
        keras.utils.set_random_seed(0)
        model = mlp()
        model.compile(optimizer=keras.optimizers.SGD(1e-3), steps_per_execution=3, jit_compile=jit_compile)
        histories.append(model.fit(dataset, epochs=2, verbose=0).history)
        assert int(model.optimizer.iterations) == 2 * 5  # 4 batches of 64 and one of 44, twice
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=METRICS_RTOL)
    assert np.isfinite(model.evaluate(dataset, verbose=0, return_dict=True)["loss"])


def test_no_compiled_loop_under_a_strategy_or_when_run_eagerly():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")  # one replica, still a strategy
    with strategy.scope():
        distributed = mlp()
        distributed.compile(jit_compile=True)
    assert not distributed.compiles_training_loop
    eager = mlp()
    eager.compile(jit_compile=True, run_eagerly=True)
    assert not eager.compiles_training_loop
    later = mlp()
    later.compile(jit_compile=True)
    later.run_eagerly = True
    later.make_train_function()
    assert later.train_function.__name__ != "train_function"  # Keras's own function


def test_a_cvae_label_out_of_range_stops_the_compiled_loop(real_batch):
    """XLA compiles assertions away; the loop checks the labels before its program."""
    images, labels = real_batch[0][:64], (np.arange(64) % 11).astype("int32")  # 10 is out of range
    model = mlp("cvae")
    model.compile(steps_per_execution=4, jit_compile=True)
    assert model.compiles_training_loop
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    with pytest.raises(ValueError, match=r"^labels must be class ids in \[0, 10\), found 0..10"):
        model.fit(dataset, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 0


def _indexed(images, labels, batch_size, seed, reshuffle=False, keys=None):
    """IndexedBatches of (images, labels): one shuffled epoch."""
    order = tf.data.Dataset.range(len(images)).shuffle(len(images), seed=seed, reshuffle_each_iteration=reshuffle)
    return IndexedBatches((tf.constant(images), tf.constant(labels)), order.batch(batch_size), keys)


@pytest.mark.parametrize("kind,binarized", [("vae", False), ("cvae", False), ("iwae", False), ("vae", True)])
def test_gathering_batches_in_the_loop_trains_as_reading_them_does(kind, binarized, real_batch):
    """IndexedBatches: 500 images in batches of 32 (15 full and one of 20), 4 steps per
    execution, 3 epochs. Gathered inside the compiled loop, read by the compiled loop
    from `dataset()`, and read by Keras's loop: the same training; with per-batch keys,
    the same dynamic binarization's draws."""
    images, labels = real_batch[0][:500], real_batch[1][:500].astype("int32")
    results = []
    for gather, jit_compile in ((True, True), (False, True), (False, False)):
        keras.utils.set_random_seed(0)  # the initial weights
        model = mlp(kind)
        model.compile(optimizer=keras.optimizers.SGD(1e-3), steps_per_execution=4, jit_compile=jit_compile)
        keys = tf.data.Dataset.random(seed=11, rerandomize_each_iteration=False) if binarized else None
        batches = _indexed(images, labels, 32, seed=5, keys=keys)
        history = model.fit(batches if gather else batches.dataset(), epochs=3, verbose=0).history
        assert int(model.optimizer.iterations) == 3 * 16  # the padding is never run
        results.append((history, model.get_weights()))
    (gathered, gathered_weights), read, keras_loop = results
    assert gathered["loss"][-1] < gathered["loss"][0]
    for name in gathered:  # the same XLA step: every metric
        np.testing.assert_allclose(gathered[name], read[0][name], rtol=METRICS_RTOL, err_msg=name)
    # Keras's loop sums in another order: an IWAE's small kl metric drifted by 8e-4
    # relative on these batches; its loss and the weights stay within the usual tolerances.
    np.testing.assert_allclose(gathered["loss"], keras_loop[0]["loss"], rtol=METRICS_RTOL)
    for history, weights in (read, keras_loop):
        for a, b in zip(gathered_weights, weights, strict=True):
            np.testing.assert_allclose(a, b, rtol=METRICS_RTOL, atol=WEIGHTS_ATOL)


def _recording_indices(model):
    """The example indices of every execution `model`'s compiled loop gathers from."""
    model.make_train_function()
    seen, run = [], model.train_function

    class Recording:  # the iterator the loop reads, noting each execution's indices
        def __init__(self, iterator):
            self.iterator = iterator

        def get_next(self):
            stack = self.iterator.get_next()
            if model.gathered_examples is not None:  # else a batch of images
                seen.extend(int(i) for i in stack.numpy().ravel() if i >= 0)
            return stack

    model.train_function = lambda iterator: run(Recording(iterator))
    return seen


@pytest.mark.parametrize("given_as", ["IndexedBatches", "arrays"])
def test_every_epoch_gathers_every_example_once_in_a_new_order(given_as, real_batch):
    images = real_batch[0][:100]
    model = mlp()
    model.compile(steps_per_execution=2, jit_compile=True)
    seen = _recording_indices(model)
    if given_as == "arrays":  # shuffled by default, as Keras shuffles arrays
        model.fit(images, epochs=3, batch_size=32, verbose=0)
    else:
        model.fit(_indexed(images, np.zeros(100, "int32"), 32, seed=3, reshuffle=True), epochs=3, verbose=0)
    assert model.gathered_examples is None  # only while fitting
    assert int(model.optimizer.iterations) == 3 * 4
    epochs = np.array(seen).reshape(3, 100)
    assert all(sorted(epoch) == list(range(100)) for epoch in epochs)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_arrays_are_gathered_only_when_nothing_else_shapes_the_batches(real_batch):
    images = real_batch[0][:64]
    model = mlp()
    model.compile(steps_per_execution=2, jit_compile=True)
    seen = _recording_indices(model)
    model.fit(images, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert seen == list(range(64))  # in order, as Keras batches unshuffled arrays
    model.fit(images, epochs=1, batch_size=16, validation_split=0.25, verbose=0)  # Keras's batches
    model.fit(images, epochs=1, batch_size=16, sample_weight=np.ones(64), verbose=0)
    assert len(seen) == 64 and int(model.optimizer.iterations) == 4 + 3 + 4


def test_gathered_examples_are_checked_before_any_step(real_batch):
    images = real_batch[0][:256].copy()
    images[100, 3, 4, 0] = 1.5
    model = mlp()
    model.compile(jit_compile=True)
    with pytest.raises(ValueError, match=r"images range over \[0, 1.5\]"):
        model.fit(_indexed(images, np.zeros(256, "int32"), 32, seed=0), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 0
    assert model.gathered_examples is None


def test_indexed_batches_fall_back_to_their_dataset_where_the_loop_does_not_gather(real_batch):
    images = real_batch[0][:100]
    model = mlp()
    model.compile(jit_compile=False)
    model.fit(_indexed(images, np.zeros(100, "int32"), 32, seed=0), epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 * 4


def test_a_short_batch_inside_an_execution_is_gathered_as_it_is(real_batch):
    """Batches of 4, 4, 2, 4, 4, 2 with 4 steps per execution: the short batch sits
    inside the first execution; gathered training equals reading the batches."""
    images = real_batch[0][:10]
    indices = tf.data.Dataset.range(10).batch(4).repeat(2)
    weights = []
    for gather in (True, False):
        keras.utils.set_random_seed(0)
        model = mlp()
        model.compile(optimizer=keras.optimizers.SGD(1e-3), steps_per_execution=4, jit_compile=True)
        batches = IndexedBatches((tf.constant(images),), indices)
        model.fit(batches if gather else batches.dataset(), epochs=2, verbose=0)
        assert int(model.optimizer.iterations) == 2 * 6
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=METRICS_RTOL, atol=WEIGHTS_ATOL)


def test_bad_indexed_batches_are_refused_by_name(real_batch):
    images = tf.constant(real_batch[0][:10])
    model = mlp()
    model.compile(steps_per_execution=2, jit_compile=True)
    outside = tf.data.Dataset.from_tensor_slices(tf.constant([[0, 1], [2, 12]], tf.int64))
    with pytest.raises(ValueError, match="IndexedBatches: index 12 is outside the 10 examples"):
        model.fit(IndexedBatches((images,), outside), verbose=0)
    uneven = IndexedBatches((images, tf.zeros(9, tf.int32)), tf.data.Dataset.range(10).batch(5))
    with pytest.raises(ValueError, match=r"IndexedBatches examples differ in length: \[10, 9\]"):
        model.fit(uneven, verbose=0)
    assert model.gathered_examples is None


def test_examples_are_checked_once_for_every_epoch_of_them(real_batch, monkeypatch):
    calls = []
    real_check = checks.check_images
    monkeypatch.setattr(checks, "check_images", lambda model, images: calls.append(1) or real_check(model, images))
    model = mlp()
    model.compile(jit_compile=True)
    examples = (tf.constant(real_batch[0][:64]),)
    for epoch in range(3):  # as `vae-tf train` fits: one epoch per call, the same examples
        model.fit(IndexedBatches(examples, tf.data.Dataset.range(64).batch(16)), initial_epoch=epoch,
                  epochs=epoch + 1, verbose=0)
    assert len(calls) == 1
    model.fit(IndexedBatches((tf.constant(real_batch[0][:64]),), tf.data.Dataset.range(64).batch(16)), verbose=0)
    assert len(calls) == 2  # new examples


def test_the_gathering_loop_reads_its_index_stacks_without_tf_data_autotuning(real_batch, monkeypatch):
    """Autotuning's thread made deleting fit's iterator wait 0.2-2 s (README, Performance)."""
    given = []
    monkeypatch.setattr(keras.Model, "fit", lambda self, x, *args, **kwargs: given.append((x, kwargs)))
    model = mlp()
    model.compile(steps_per_execution=4, jit_compile=True)
    model.fit(IndexedBatches((tf.constant(real_batch[0][:64]),), tf.data.Dataset.range(64).batch(8)), verbose=0)
    (stacks, kwargs), = given
    assert kwargs["steps_per_epoch"] == 8
    assert stacks.element_spec.shape.as_list() == [None, None]  # one execution's index vectors
    assert stacks.options().autotune.enabled is False


def test_arrays_keep_keras_batch_size_for_validation_and_its_errors(real_batch):
    images = real_batch[0][:128]
    model = mlp()
    model.compile(steps_per_execution=2, jit_compile=True)
    executions = []
    counter = keras.callbacks.LambdaCallback(on_test_batch_end=lambda batch, logs: executions.append(batch))
    model.fit(images, batch_size=64, validation_data=(images,), callbacks=[counter], verbose=0)
    assert len(executions) == 1  # two validation batches of 64 (Keras's default 32 makes four)
    cvae = mlp("cvae")
    cvae.compile(jit_compile=True)
    with pytest.raises(ValueError, match="cardinality"):  # Keras's own error for uneven arrays
        cvae.fit(images, real_batch[1][:100].astype("int32"), verbose=0)
