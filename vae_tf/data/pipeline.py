"""The tf.data pipeline: map -> cache -> shuffle -> batch -> prefetch, with the global batch size.

`training_pipelines` gives the training split reshuffled every epoch, one epoch by
index (the same batches after a resume) and, for examples held in memory, those batches
as `IndexedBatches`; `evaluation_pipeline` gives a validation or test split in order.
`cache_plan` says which splits of a streamed source fit in a memory budget.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

BINARIZE = ("none", "static", "dynamic")
# The held-out splits' one Bernoulli draw under binarize="dynamic": the same for every
# run and seed, so that test likelihoods of different models compare (the IWAE paper's protocol).
HELD_OUT_DRAW_SEED = 0
_SHUFFLE_BUFFER = 10_000


def read_ahead(dataset):
    """`dataset` prefetched, with tf.data's autotuning off.

    The autotuning thread made deleting an iterator wait 0.2-2 s in about half the
    `fit` calls of an MLP epoch on a 2-core machine (README, Performance), and every
    `fit`, `evaluate` and `predict` deletes one. Without it, a map with
    `num_parallel_calls=AUTOTUNE` runs on as many threads as there are cores.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


@dataclasses.dataclass(frozen=True)
class IndexedBatches:
    """Batches of examples held in memory, each given as the indices of its examples.

    `examples` is a tuple of tensors with the examples on axis 0 (images, labels);
    `indices` a dataset of integer index vectors, one per batch. `dataset()` is the
    batches themselves, gathered by tf.data. `Autoencoder.fit` takes either: a model
    whose training loop is compiled (`vae_tf.models.loops.compiled_loop`) keeps the examples
    in memory and gathers each batch inside its XLA program, with no input pipeline
    between the steps; any other model fits `dataset()`. The batches are the same.

    With `keys` (a dataset of int64 keys, one per batch: `binarize="dynamic"`), each
    batch's images (the first of `examples`, pixel intensities in [0, 1]) are a fresh
    Bernoulli draw made with its key: `bernoulli_noise(shape, key) < images`.
    """

    examples: tuple
    indices: tf.data.Dataset
    keys: tf.data.Dataset | None = None

    def skip(self, count):
        """These batches without the first `count` (and their keys)."""
        keys = None if self.keys is None else self.keys.skip(count)
        return dataclasses.replace(self, indices=self.indices.skip(count), keys=keys)

    def dataset(self):
        gather = lambda indices: tuple(tf.gather(t, indices) for t in self.examples)  # noqa: E731
        if self.keys is None:
            return read_ahead(self.indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE))
        gathered = tf.data.Dataset.zip(self.indices.map(gather), self.keys)
        return read_ahead(_binarize_per_batch(gathered))


def _binarize_static(dataset):
    return dataset.map(lambda x, y: (tf.cast(x >= 0.5, tf.float32), y))


def _binarize_fixed(dataset, seed=HELD_OUT_DRAW_SEED):
    """Binarizes once with a fixed seed: stochastic, but the same every epoch and run."""
    def draw(index, example):
        image, label = example
        noise = tf.random.stateless_uniform(tf.shape(image), seed=tf.stack([seed, index]))
        return tf.cast(noise < image, tf.float32), label

    return dataset.enumerate().map(lambda i, ex: draw(tf.cast(i, tf.int32), ex))


def bernoulli_noise(shape, key):
    """The uniform noise of a dynamic binarization's draw with int64 `key`: an image is
    `noise < intensities`. Made outside XLA only (XLA's random bits differ from the kernel's)."""
    return tf.random.stateless_uniform(shape, seed=tf.stack([tf.cast(key, tf.int64), 0]))


def _binarize_per_batch(batches_and_keys):
    """A fresh Bernoulli draw for every batch of a dataset of ((images, ...), key)."""
    def draw(batch, key):
        images, *rest = batch
        return (tf.cast(bernoulli_noise(tf.shape(images), key) < images, tf.float32), *rest)

    return batches_and_keys.map(draw, num_parallel_calls=tf.data.AUTOTUNE)


def _batch_keys(shuffle_seed, reshuffle):
    return tf.data.Dataset.random(seed=shuffle_seed + 1, rerandomize_each_iteration=reshuffle)


def evaluation_pipeline(dataset, batch_size, binarize, cache, decode=None):
    """A validation or test split in its order: (decode) -> map (binarize: "dynamic" is
    one draw with `HELD_OUT_DRAW_SEED`) -> cache -> batch -> prefetch."""
    if decode is not None:
        dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if binarize == "static":
        dataset = _binarize_static(dataset)
    elif binarize == "dynamic":
        dataset = _binarize_fixed(dataset)
    if cache:
        dataset = dataset.cache()
    return read_ahead(dataset.batch(batch_size))


def training_pipelines(dataset, batch_size, binarize, seed, cache, decode=None, in_memory=False):
    """(train, epoch, indexed_epoch): a fresh shuffle (and Bernoulli draw) per epoch, after the cache.

    `train` reshuffles on every new iteration; `epoch(index)` is one epoch whose order
    and draws depend on (seed, index) alone. With `decode` (a function from an element,
    e.g. a file path and label, to (image, label)), `dataset` holds the undecoded
    elements: decoded in parallel before the cache when caching, else after the
    shuffle, so that an uncached epoch holds one shuffle buffer of paths, not images.
    Both give the same images in the same order (the shuffle's order depends on the
    seed and the element count alone).

    With `in_memory` (a dataset of known size whose elements are in memory already,
    nothing to decode), `indexed_epoch(index)` is `epoch(index)` as `IndexedBatches`:
    the same batches, by that same property, as shuffled indices into the prepared
    examples, which are gathered into tensors on its first call, with the same per-batch
    keys of `binarize="dynamic"`'s draws. Else it is None.
    """
    def prepare(elements):
        if decode is not None:
            elements = elements.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        return _binarize_static(elements) if binarize == "static" else elements

    count = int(dataset.cardinality())
    prepared = prepare(dataset)
    if cache:
        dataset = prepared.cache()

    def shuffled(elements, shuffle_seed, reshuffle):
        return elements.shuffle(_SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=reshuffle)

    def batches(shuffle_seed, reshuffle):
        batched = shuffled(dataset, shuffle_seed, reshuffle)
        if not cache:
            batched = prepare(batched)
        batched = batched.batch(batch_size)
        if binarize == "dynamic":
            batched = _binarize_per_batch(tf.data.Dataset.zip(batched, _batch_keys(shuffle_seed, reshuffle)))
        return read_ahead(batched)

    def epoch_seed(index):
        return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])

    def epoch(index):
        return batches(epoch_seed(index), reshuffle=False)

    @functools.cache
    def examples():
        return tuple(prepared.batch(count).get_single_element())

    def indexed_epoch(index):
        order = shuffled(tf.data.Dataset.range(count), epoch_seed(index), reshuffle=False)
        keys = _batch_keys(epoch_seed(index), reshuffle=False) if binarize == "dynamic" else None
        return IndexedBatches(examples(), order.batch(batch_size), keys)

    train = batches(seed, reshuffle=True)
    gatherable = in_memory and decode is None and count > 0
    return train, epoch, indexed_epoch if gatherable else None


def cache_plan(split_bytes, budget_mib):
    """Which splits to cache: in the given order, each one whose decoded size fits in
    what remains of `budget_mib` MiB.

    Args:
        split_bytes: dict of split name -> decoded size in bytes (None: unknown size,
            never cached).
        budget_mib: int. The memory budget in MiB, >= 0.

    Returns:
        A tuple of the names of the splits to cache.

    Example:

    >>> cache_plan({"train": 600 * 2**20, "test": 200 * 2**20}, 700)
    ('train',)
    """
    remaining, cached = budget_mib * 2**20, []
    for name, size in split_bytes.items():
        if size is not None and size <= remaining:
            cached.append(name)
            remaining -= size
    return tuple(cached)


def decoded_bytes(dataset, image_shape, count=None):
    """float32 bytes of `dataset`'s images once decoded; None if its size is unknown."""
    count = int(dataset.cardinality()) if count is None else count
    return None if count < 0 else count * int(np.prod(image_shape)) * 4
