"""Held-out evaluation: ELBO, importance-weighted log-likelihood, anomaly scores, features.

`data` is anything `iterate_batches` accepts: a tf.data dataset of `(images, labels)`
or of images, or a numpy array of images. All figures are in nats per example.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from vae_tf.layers import LOG_VAR_RANGE, gaussian_kl
from vae_tf.models import AE, CVAE

_LOG_2PI = math.log(2.0 * math.pi)


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
    """Labels as the model's methods take them: required by a CVAE, dropped otherwise."""
    if isinstance(model, CVAE):
        if labels is None:
            raise ValueError("a CVAE is evaluated on (images, labels) batches")
        return labels
    return None


def _require_variational(model, what):
    if isinstance(model, AE):
        raise ValueError(f"{what} needs a VAE or CVAE; an AE has no latent distribution")


def neg_elbo_terms(model, x, labels, draw_noise):
    """Per-example (reconstruction, kl) in nats, with one draw z ~ q(z|x).

    Args:
        model: VAE or CVAE.
        x: tensor. A batch of images.
        labels: tensor or None. Their labels (CVAE only).
        draw_noise: callable. Returns standard-normal noise eps of a given shape;
            z = z_mean + exp(z_log_var / 2) * eps.

    Returns:
        Two tensors of shape (batch,).
    """
    z_mean, z_log_var, _ = model.encoder(model.network_inputs(x, labels), training=False)
    std = ops.exp(0.5 * ops.clip(z_log_var, *LOG_VAR_RANGE))
    z = z_mean + std * draw_noise(ops.shape(z_mean))
    params = model.decoder(model.network_inputs(z, labels), training=False)
    reconstruction = model.likelihood.negative_log_likelihood(x, params)
    return reconstruction, ops.sum(gaussian_kl(z_mean, z_log_var), axis=-1)


def reconstruction_nll(model, x):
    """Per-example -log p(x | decoder(encoder(x))) of an AE, in nats."""
    params = model.decoder(model.encoder(x, training=False), training=False)
    return model.likelihood.negative_log_likelihood(x, params)


def elbo(model, data, seed=0):
    """Estimates the ELBO terms on held-out data with one draw of z per example.

    The KL weight used in training does not enter: this is the true ELBO.

    Args:
        model: VAE or CVAE.
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
        lambda x, labels: neg_elbo_terms(
            model, x, labels, lambda shape: keras.random.normal(shape, seed=seed_generator)
        ),
        reduce_retracing=True,
    )
    reconstructions, kls = [], []
    for x, labels in iterate_batches(data):
        reconstruction, kl = terms(x, model_labels(model, labels))
        reconstructions.append(reconstruction.numpy())
        kls.append(kl.numpy())
    reconstruction = float(np.concatenate(reconstructions).mean())
    kl = float(np.concatenate(kls).mean())
    return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}


def log_likelihoods(model, data, num_samples=100, seed=0, max_decoded=8192):
    """Importance-weighted estimates of log p(x) per example (the IWAE bound).

    log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], z_k ~ q(z|x).
    The bound tightens as `num_samples` grows; draws are decoded in chunks of at
    most `max_decoded` images, so large `num_samples` fit in memory.

    Args:
        model: VAE or CVAE.
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
    def chunk_log_sum_exp(x, labels, z_mean, z_log_var, chunk):
        batch = ops.shape(x)[0]
        log_var = ops.clip(z_log_var, *LOG_VAR_RANGE)
        eps = keras.random.normal((chunk, batch, ops.shape(z_mean)[-1]), seed=seed_generator)
        z = z_mean + ops.exp(0.5 * log_var) * eps
        log_q = ops.sum(-0.5 * (_LOG_2PI + log_var + ops.square(eps)), axis=-1)
        log_prior = ops.sum(-0.5 * (_LOG_2PI + ops.square(z)), axis=-1)
        flat_z = ops.reshape(z, (chunk * batch, -1))
        flat_labels = None if labels is None else ops.tile(labels, (chunk,))
        params = model.decoder(model.network_inputs(flat_z, flat_labels), training=False)
        tiled_x = ops.tile(x, (chunk,) + (1,) * (len(x.shape) - 1))
        log_px = -ops.reshape(model.likelihood.negative_log_likelihood(tiled_x, params), (chunk, batch))
        return ops.logsumexp(log_px + log_prior - log_q, axis=0)

    estimates = []
    for x, labels in iterate_batches(data):
        labels = model_labels(model, labels)
        z_mean, z_log_var, _ = model.encoder(model.network_inputs(x, labels), training=False)
        chunk = max(1, min(num_samples, max_decoded // int(x.shape[0])))
        partial = []
        for start in range(0, num_samples, chunk):
            size = min(chunk, num_samples - start)
            partial.append(chunk_log_sum_exp(x, labels, z_mean, z_log_var, size))
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

    VAE/CVAE: the importance-weighted estimate of -log p(x). AE: the reconstruction
    negative log-likelihood -log p(x | decoder(encoder(x))).

    Returns:
        A numpy array of scores in nats, one per example.
    """
    if not isinstance(model, AE):
        return -log_likelihoods(model, data, num_samples, seed)
    return np.concatenate([reconstruction_nll(model, x).numpy() for x, _ in iterate_batches(data)])


def latent_features(model, data):
    """Latent features for downstream models: z (AE) or the posterior means (VAE, CVAE).

    Returns:
        (features, labels): numpy arrays; labels is None when `data` has none.
    """
    features, all_labels = [], []
    for x, labels in iterate_batches(data):
        code = model.encode(x, model_labels(model, labels))
        features.append(np.asarray(code if isinstance(model, AE) else code[0]))
        if labels is not None:
            all_labels.append(np.asarray(labels))
    return np.concatenate(features), np.concatenate(all_labels) if all_labels else None
