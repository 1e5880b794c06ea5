"""The VQ-VAE's second stage: a PixelCNN prior over its code grids, fitted to the codes
of the training data, measured on the test data and attached with `VQVAE.attach_prior`."""

import keras
import tensorflow as tf

from vae_tf.models.vqvae.pixelcnn import PixelCNNPrior

PRIOR_LEARNING_RATE = 1e-3  # Adam's, for the PixelCNN prior
SHUFFLE_BATCHES = 10_000  # of code grids, dealt in a new order every epoch


def make_prior(model, num_classes=None, **kwargs):
    """Builds a `PixelCNNPrior` matching a VQ-VAE's codebook size and code grid.

    Args:
        model: VQVAE.
        num_classes: int or None. Condition on class labels. Defaults to None.
        **kwargs: `filters`, `num_layers`, `first_kernel_size`, `kernel_size`.

    Returns:
        An uncompiled `PixelCNNPrior`.
    """
    return PixelCNNPrior(model.num_embeddings, model.grid_shape, num_classes=num_classes, **kwargs)


def encode_dataset(model, dataset):
    """Maps a batched tf.data dataset of images (or (images, labels)) to code grids.

    Args:
        model: VQVAE.
        dataset: tf.data.Dataset. Batches of images or (images, labels) pairs.

    Returns:
        A `tf.data.Dataset` of int32 code grids, or (codes, labels) pairs, cached in memory.
    """
    def to_codes(*batch):
        codes = model.encode(batch[0])["codes"]
        return codes if len(batch) == 1 else (codes, tf.cast(batch[1], tf.int32))

    return dataset.map(to_codes).cache()




def fit_prior(model, train, test, epochs, num_classes=None, learning_rate=PRIOR_LEARNING_RATE, seed=None,
              verbose="auto", **kwargs):
    """Trains a `PixelCNNPrior` on the code grids of `train` and measures it on `test`.

    Args:
        model: VQVAE. Its encoder is fixed; the prior is not attached (`attach_prior`).
        train: tf.data.Dataset. Batches of (images, labels).
        test: tf.data.Dataset. Batches of (images, labels).
        epochs: int. Training epochs, >= 1.
        num_classes: int or None. Condition the prior on the labels. Defaults to None.
        learning_rate: float. Adam learning rate. Defaults to `PRIOR_LEARNING_RATE`.
        seed: int or None. Of the order of the batches in each epoch. Defaults to None.
        verbose: Keras `fit` verbosity. Defaults to "auto".
        **kwargs: `make_prior`'s network options.

    Returns:
        (prior, {"prior_nll": nats per image, "prior_bits_per_dim": bits per code}) on `test`.

    Example:

    >>> prior, metrics = fit_prior(model, data.train, data.test, epochs=10)
    >>> model.attach_prior(prior)
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")

    prior = make_prior(model, num_classes=num_classes, **kwargs)
    prior.compile(optimizer=keras.optimizers.Adam(learning_rate))
    # The grids are cached in the first pass's order, so the batches are dealt again every
    # epoch here (Keras cannot shuffle a tf.data dataset, and warns if asked to).
    grids = prior_data(model, prior, train).shuffle(SHUFFLE_BATCHES, seed=seed, reshuffle_each_iteration=True)
    prior.fit(grids, epochs=epochs, verbose=verbose, shuffle=False)
    return prior, model.evaluate_prior(test, prior)


def prior_data(model, prior, dataset):
    """Code grids of (images, labels) batches, with the labels if `prior` is conditional."""
    pairs = encode_dataset(model, dataset)
    return pairs if prior.is_conditional else pairs.map(lambda codes, _: codes)
