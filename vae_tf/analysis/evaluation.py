"""Held-out evaluation: ELBO, importance-weighted log-likelihood, anomaly scores, features.

`data` is anything `iterate_batches` accepts: a tf.data dataset of `(images, labels)`
or of images, or a numpy array of images. All figures are in nats per example.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

IW_SAMPLES = 100  # importance samples K of the IWAE estimate, unless the caller says


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


def batch_graph(model, function):
    """`function(x, labels)` of one batch as a `tf.function` traced once for any batch size.

    The input signature fixes images to float32 (None, *model.image_shape) and labels to
    int32 (None,) (conditional models; others get labels None), so batches of every size
    reuse one graph instead of tracing a new one per shape.

    Args:
        model: the model `function` uses; gives the image shape and whether labels count.
        function: callable (x, labels) -> tensor, made of TensorFlow/Keras ops.

    Returns:
        A callable (x, labels=None) -> tensor; its `graph` attribute is the `tf.function`.
    """
    image_spec = tf.TensorSpec((None, *model.image_shape), tf.float32)
    if model.is_conditional:
        graph = tf.function(function, autograph=False,
                            input_signature=[image_spec, tf.TensorSpec((None,), tf.int32)])

        def call(x, labels=None):
            return graph(tf.cast(x, tf.float32), tf.cast(model_labels(model, labels), tf.int32))
    else:
        graph = tf.function(lambda x: function(x, None), autograph=False, input_signature=[image_spec])

        def call(x, labels=None):
            return graph(tf.cast(x, tf.float32))

    call.graph = graph
    return call


def log_likelihood_graph(model, num_samples=IW_SAMPLES, seed=0, batch_size=256, max_decoded=8192):
    """Importance-weighted log p(x) of batches of at most `batch_size` examples, as one graph.

    The graph encodes the batch once and decodes the K draws in a loop over chunks of
    max(1, min(K, max_decoded // batch_size)) draws, a size fixed when the graph is made,
    so batches of every size reuse one trace (`batch_graph`).

    Args:
        model: a variational model (`model.is_variational`).
        num_samples: int. K, >= 1. Defaults to `IW_SAMPLES`.
        seed: int. Seed of the draws (a `keras.random.SeedGenerator`, advanced by each
            call). Defaults to 0.
        batch_size: int. Largest batch the caller passes, >= 1. Defaults to 256.
        max_decoded: int. Most images decoded at once. Defaults to 8192.

    Returns:
        A callable (x, labels=None) -> (batch,) tensor of log p(x) estimates in nats.
    """
    _require_variational(model, "importance-weighted log-likelihood")
    for name, value in (("num_samples", num_samples), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value}")
    seed_generator = keras.random.SeedGenerator(seed)
    chunk = max(1, min(num_samples, max_decoded // batch_size))
    full_chunks, rest = divmod(num_samples, chunk)

    def chunk_log_sum_exp(x, labels, codes, size):
        log_w = model.log_importance_weights(x, codes, labels, num_samples=size, seed=seed_generator)
        return ops.logsumexp(log_w, axis=0)

    def log_p(x, labels):
        codes = model.encode(x, labels)

        def add_chunk(i, total):
            return i + 1, ops.logaddexp(total, chunk_log_sum_exp(x, labels, codes, chunk))

        # A loop, not one copy of the decoder per chunk, so the graph stays small for any
        # K; one chunk at a time (parallel_iterations=1) keeps memory to `max_decoded`.
        total = tf.fill(tf.shape(x)[:1], -math.inf)
        _, total = tf.while_loop(lambda i, _: i < full_chunks, add_chunk, (tf.constant(0), total),
                                 parallel_iterations=1)
        if rest:
            total = ops.logaddexp(total, chunk_log_sum_exp(x, labels, codes, rest))
        return total - math.log(num_samples)

    return batch_graph(model, log_p)


def log_likelihoods(model, data, num_samples=IW_SAMPLES, seed=0, max_decoded=8192, batch_size=256):
    """Importance-weighted estimates of log p(x) per example (the IWAE bound).

    log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], z_k ~ q(z|x),
    with the model's own prior density (`model.log_importance_weights`). The bound
    tightens as `num_samples` grows; draws are decoded in chunks of at most
    `max_decoded` images, so large `num_samples` fit in memory. One graph serves every
    batch (`log_likelihood_graph`); larger dataset batches are split to `batch_size`.

    Args:
        model: a variational model (`model.is_variational`).
        data: dataset of (images, labels) or images, or an array of images.
        num_samples: int. Importance samples K per example, >= 1. Defaults to `IW_SAMPLES`.
        seed: int. Seed of the draws. Defaults to 0.
        max_decoded: int. Most images decoded at once. Defaults to 8192.
        batch_size: int. Most examples per graph call. Defaults to 256.

    Returns:
        A numpy array of log p(x) estimates in nats, one per example.
    """
    log_p = log_likelihood_graph(model, num_samples, seed, batch_size, max_decoded)
    estimates = []
    for x, labels in iterate_batches(data, batch_size):
        labels = model_labels(model, labels)
        for start in range(0, int(x.shape[0]), batch_size):
            part = slice(start, start + batch_size)
            estimates.append(np.asarray(log_p(x[part], None if labels is None else labels[part])))
    return np.concatenate(estimates)


def importance_weighted_log_likelihood(model, data, num_samples=IW_SAMPLES, seed=0):
    """Mean importance-weighted estimate of log p(x) over `data`, in nats per example.

    Example:

    >>> importance_weighted_log_likelihood(model, splits.test, num_samples=1000)
    """
    return float(log_likelihoods(model, data, num_samples, seed).mean())


def anomaly_scores(model, data, num_samples=IW_SAMPLES, seed=0):
    """Per-example anomaly scores: higher means less likely under the model.

    The model's `likelihood_score`: the importance-weighted estimate of -log p(x)
    (`iw_nll`, variational models), or its `score_term` from `per_example_terms` (an
    AE's reconstruction negative log-likelihood -log p(x | decoder(encoder(x)))).

    Returns:
        A numpy array of scores in nats, one per example.
    """
    if model.likelihood_score == "iw_nll":
        return -log_likelihoods(model, data, num_samples, seed)
    scores = tf.function(lambda x, labels: model.per_example_terms(x, labels)[model.score_term])
    return np.concatenate(
        [scores(x, model_labels(model, labels)).numpy() for x, labels in iterate_batches(data)]
    )


def held_out_metrics(model, data, iw_samples=IW_SAMPLES):
    """Held-out metrics in nats per example, those the model's kind asks for
    (`model.held_out_metrics`): the -ELBO terms and the IWAE estimate of a variational
    model, the reconstruction NLL of others, and an attached prior's code likelihood.

    Args:
        model: a vae_tf model.
        data: dataset of (images, labels) or images, or an array of images.
        iw_samples: int. Importance samples of the IWAE estimate. Defaults to 100.

    Returns:
        A JSON-ready dict of floats and counts.
    """
    wanted, metrics = model.held_out_metrics, {}
    if "elbo" in wanted:
        metrics.update(elbo(model, data))
    if "iw_log_likelihood" in wanted:
        log_p = log_likelihoods(model, data, num_samples=iw_samples)
        metrics.update(iw_log_likelihood=float(log_p.mean()), iw_samples=iw_samples, examples=int(len(log_p)))
    if "reconstruction" in wanted:
        scores = anomaly_scores(model, data)
        metrics.update(reconstruction=float(scores.mean()), examples=int(len(scores)))
    if "prior" in wanted:
        metrics.update(model.evaluate_prior(data))
    return metrics


def latent_features(model, data, max_examples=None, batch_size=256, return_inputs=False):
    """The latent mean of each example (`model.mean_code`: z of an AE, the posterior
    mean of a VAE, a VQ-VAE's z_e averaged over its grid): features for downstream
    models, the projector, the disentanglement metrics and the latent plots.

    Args:
        model: a vae_tf model; a conditional one is given the batches' labels.
        data: dataset of (images, labels) or images, or an array of images.
        max_examples: int or None. Encode only the first ones. Defaults to None (all).
        batch_size: int. Examples per call of an array `data`. Defaults to 256.
        return_inputs: bool. Also return the inputs encoded. Defaults to False.

    Returns:
        (features float32 (N, D), labels or None when `data` has none), and the
        inputs (N, ...) with `return_inputs`.
    """
    features, all_labels, inputs = [], [], []
    count = 0
    for x, labels in iterate_batches(data, batch_size):
        if max_examples is not None:
            x = x[:max_examples - count]
            labels = None if labels is None else labels[:max_examples - count]
        features.append(np.asarray(model.mean_code(x, model_labels(model, labels)), "float32"))
        if labels is not None:
            all_labels.append(np.asarray(labels))
        if return_inputs:
            inputs.append(np.asarray(x))
        count += len(features[-1])
        if max_examples is not None and count >= max_examples:
            break
    if not features:
        raise ValueError("data is empty: nothing to encode")
    labels = np.concatenate(all_labels) if all_labels and len(all_labels) == len(features) else None
    features = np.concatenate(features)
    return (features, labels, np.concatenate(inputs)) if return_inputs else (features, labels)
