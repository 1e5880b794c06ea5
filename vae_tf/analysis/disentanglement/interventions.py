"""The FactorVAE score (Kim & Mnih 2018) and the encoder functions the disentanglement
metrics draw codes with (`vae_tf.analysis.disentanglement`)."""

import logging

import numpy as np

from vae_tf.analysis.evaluation import latent_features

log = logging.getLogger(__name__)


def encoder_means(model, batch_size=256):
    """A function images -> codes (numpy) from a model's latent means (`mean_code`,
    via `vae_tf.analysis.evaluation.latent_features`), in batches, as in disentanglement_lib.

    Args:
        model: a vae_tf model.
        batch_size: int. Images per `mean_code` call. Defaults to 256.

    Returns:
        A function (n, H, W, C) array -> (n, dims) float64 array.
    """

    def encode(images):
        return latent_features(model, images, batch_size=batch_size)[0].astype("float64")

    return encode


def as_encode_fn(model_or_encode_fn):
    if hasattr(model_or_encode_fn, "mean_code"):
        return encoder_means(model_or_encode_fn)
    if callable(model_or_encode_fn):
        return model_or_encode_fn
    raise ValueError(f"expected a model with `mean_code` or a function images -> codes, got {model_or_encode_fn!r}")


def codes_of(encode_fn, images):
    codes = np.asarray(encode_fn(images), "float64")
    if codes.ndim != 2 or len(codes) != len(images):
        raise ValueError(f"encode_fn must map {len(images)} images to (examples, dims) codes, got {codes.shape}")
    return codes


def _votes(encode_fn, sampler, num_votes, batch_size, scale, active, rng, chunk=64, what="votes"):
    """(dims, factors) counts: which dimension varies least when one factor is fixed."""
    votes = np.zeros((len(scale), sampler.num_factors), "int64")
    active_dims = np.flatnonzero(active)
    report_every = max(chunk, num_votes // 10 // chunk * chunk)  # about ten progress lines
    for start in range(0, num_votes, chunk):
        if start and start % report_every == 0:
            log.info("FactorVAE score: %d of %d %s", start, num_votes, what)
        fixed = rng.integers(sampler.num_factors, size=min(chunk, num_votes - start))
        images = np.concatenate([sampler.sample_fixed(batch_size, int(k), rng)[0] for k in fixed])
        codes = codes_of(encode_fn, images).reshape(len(fixed), batch_size, -1)
        variances = codes.var(axis=1, ddof=1)[:, active] / scale[active] ** 2
        np.add.at(votes, (active_dims[np.argmin(variances, axis=1)], fixed), 1)
    return votes


def factor_vae_score(
    model_or_encode_fn,
    sampler,
    num_train=10_000,
    num_eval=5_000,
    batch_size=64,
    num_variance_estimate=10_000,
    prune_threshold=0.05,
    seed=0,
):
    """The FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by
    Factorising").

    Codes are divided by their standard deviation over the data (dimensions whose
    standard deviation is below `prune_threshold` are collapsed and ignored). A vote:
    fix one random factor at a random value, draw `batch_size` images, and take the
    dimension with the smallest normalized variance. The majority-vote classifier maps
    each dimension to the factor it was most often the answer for; the score is its
    accuracy on fresh evaluation votes. Sample sizes are disentanglement_lib's.

    Args:
        model_or_encode_fn: a model (its latent means are used) or a function
            mapping (n, H, W, C) images to (n, dims) codes.
        sampler: an object with `num_factors`, `sample(num, rng)` -> (images, factors)
            and `sample_fixed(num, factor, rng)` -> (images, factors), e.g.
            `vae_tf.data.dsprites.DSprites()`.
        num_train: int. Training votes. Defaults to 10,000.
        num_eval: int. Evaluation votes. Defaults to 5,000.
        batch_size: int. Images per vote, >= 2. Defaults to 64.
        num_variance_estimate: int. Images for the global variances. Defaults to 10,000.
        prune_threshold: float. Minimum standard deviation of an active dimension.
            Defaults to 0.05.
        seed: int. Seeds every draw. Defaults to 0.

    Returns:
        dict with "eval_accuracy" (the score), "train_accuracy" and "active_dims".

    Example:

    >>> factor_vae_score(model, DSprites())["eval_accuracy"]
    """
    for name, value, minimum in (("num_train", num_train, 1), ("num_eval", num_eval, 1),
                                 ("batch_size", batch_size, 2),
                                 ("num_variance_estimate", num_variance_estimate, 2)):
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    encode_fn = as_encode_fn(model_or_encode_fn)
    rng = np.random.default_rng(seed)
    scale = codes_of(encode_fn, sampler.sample(num_variance_estimate, rng)[0]).std(axis=0, ddof=1)
    active = scale >= prune_threshold
    if not active.any():
        return {"eval_accuracy": 0.0, "train_accuracy": 0.0, "active_dims": 0}
    log.info("FactorVAE score: %d training and %d evaluation votes of %d images each",
             num_train, num_eval, batch_size)
    train = _votes(encode_fn, sampler, num_train, batch_size, scale, active, rng, what="training votes")
    evaluation = _votes(encode_fn, sampler, num_eval, batch_size, scale, active, rng, what="evaluation votes")
    classifier = np.argmax(train, axis=1)
    return {
        "eval_accuracy": float(evaluation[np.arange(len(classifier)), classifier].sum() / num_eval),
        "train_accuracy": float(train.max(axis=1).sum() / num_train),
        "active_dims": int(active.sum()),
    }
