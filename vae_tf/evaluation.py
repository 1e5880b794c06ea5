"""Held-out evaluation: ELBO, importance-weighted log-likelihood, anomaly scores, features.

`data` is anything `iterate_batches` accepts: a tf.data dataset of `(images, labels)`
or of images, or a numpy array of images. All figures are in nats per example.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def iterate_batches(data, batch_size=256):
    """Yields (images, labels or None) batches from a dataset or an array of images."""
    if isinstance(data, tf.data.Dataset):
        for batch in data:
            if isinstance(batch, (tuple, list)):
                yield batch[0], batch[1]
            else:
                yield batch, None
    else:
        data = np.asarray(data, dtype="float32")
        for start in range(0, len(data), batch_size):
            yield tf.constant(data[start : start + batch_size]), None


def model_labels(model, labels):
    """Labels as the model's methods take them: required by a conditional model, dropped otherwise."""
    if model.is_conditional:
        if labels is None:
            raise ValueError(
                f"{type(model).__name__} is conditional: evaluate it on (images, labels) batches"
            )
        return labels
    return None


def _require_variational(model, what):
    if not model.is_variational:
        raise ValueError(
            f"{what} needs a variational model; {type(model).__name__} has no latent distribution"
        )


def elbo(model, data, seed=0):
    """Estimates the ELBO terms on held-out data with one draw of z per example.

    The KL weight used in training does not enter: this is the true ELBO. The terms
    are the model's own `per_example_terms` (the KL is analytic for the standard
    normal prior, a Monte-Carlo estimate for a learned one).

    Args:
        model: a variational model (`model.is_variational`).
        data: dataset of (images, labels) or images, or an array of images.
        seed: int. Seed of the draws of z. Defaults to 0.

    Returns:
        A dict of floats, nats per example: `neg_elbo`, `reconstruction`, `kl`.

    Example:

    >>> elbo(model, splits.test)["neg_elbo"]
    """
    _require_variational(model, "elbo")
    seed_generator = keras.random.SeedGenerator(seed)
    terms = tf.function(
        lambda x, labels: model.per_example_terms(x, labels, seed=seed_generator),
        reduce_retracing=True,
    )
    reconstructions, kls = [], []
    for x, labels in iterate_batches(data):
        batch_terms = terms(x, model_labels(model, labels))
        reconstructions.append(batch_terms["reconstruction"].numpy())
        kls.append(batch_terms["kl"].numpy())
    reconstruction = float(np.concatenate(reconstructions).mean())
    kl = float(np.concatenate(kls).mean())
    return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}


def log_likelihoods(model, data, num_samples=100, seed=0, max_decoded=8192):
    """Importance-weighted estimates of log p(x) per example (the IWAE bound).

    log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], z_k ~ q(z|x),
    with the model's own prior density (`model.log_importance_weights`). The bound
    tightens as `num_samples` grows; draws are decoded in chunks of at most
    `max_decoded` images, so large `num_samples` fit in memory.

    Args:
        model: a variational model (`model.is_variational`).
        data: dataset of (images, labels) or images, or an array of images.
        num_samples: int. Importance samples K per example, >= 1. Defaults to 100.
        seed: int. Seed of the draws. Defaults to 0.
        max_decoded: int. Most images decoded at once. Defaults to 8192.

    Returns:
        A numpy array of log p(x) estimates in nats, one per example.
    """
    _require_variational(model, "importance-weighted log-likelihood")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples}")
    seed_generator = keras.random.SeedGenerator(seed)

    @tf.function(reduce_retracing=True)
    def chunk_log_sum_exp(x, labels, codes, chunk):
        log_w = model.log_importance_weights(x, codes, labels, num_samples=chunk, seed=seed_generator)
        return ops.logsumexp(log_w, axis=0)

    estimates = []
    for x, labels in iterate_batches(data):
        labels = model_labels(model, labels)
        codes = model.encode(x, labels)
        chunk = max(1, min(num_samples, max_decoded // int(x.shape[0])))
        partial = []
        for start in range(0, num_samples, chunk):
            size = min(chunk, num_samples - start)
            partial.append(chunk_log_sum_exp(x, labels, codes, size))
        estimates.append((ops.logsumexp(ops.stack(partial), axis=0) - math.log(num_samples)).numpy())
    return np.concatenate(estimates)


def importance_weighted_log_likelihood(model, data, num_samples=100, seed=0):
    """Mean importance-weighted estimate of log p(x) over `data`, in nats per example.

    Example:

    >>> importance_weighted_log_likelihood(model, splits.test, num_samples=1000)
    """
    return float(log_likelihoods(model, data, num_samples, seed).mean())


def anomaly_scores(model, data, num_samples=100, seed=0):
    """Per-example anomaly scores: higher means less likely under the model.

    Variational models: the importance-weighted estimate of -log p(x). Others: their
    `score_term` from `per_example_terms` (an AE's reconstruction negative
    log-likelihood -log p(x | decoder(encoder(x)))).

    Returns:
        A numpy array of scores in nats, one per example.
    """
    if model.is_variational:
        return -log_likelihoods(model, data, num_samples, seed)
    scores = tf.function(lambda x, labels: model.per_example_terms(x, labels)[model.score_term])
    return np.concatenate(
        [scores(x, model_labels(model, labels)).numpy() for x, labels in iterate_batches(data)]
    )


def latent_features(model, data):
    """Latent features for downstream models: each model's `code_name` output of `encode`
    (z of an AE, the posterior means of a VAE).

    Returns:
        (features, labels): numpy arrays; labels is None when `data` has none.
    """
    features, all_labels = [], []
    for x, labels in iterate_batches(data):
        codes = model.encode(x, model_labels(model, labels))
        features.append(np.asarray(codes[model.code_name]))
        if labels is not None:
            all_labels.append(np.asarray(labels))
    return np.concatenate(features), np.concatenate(all_labels) if all_labels else None
