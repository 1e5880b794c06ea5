"""What the disentanglement metrics share: input checks, a seeded split, the histogram
discretizer and discrete mutual information, and the encoder functions that turn images
into codes."""

import numpy as np

from vae_tf.analysis.evaluation import latent_features

# disentanglement_lib's held-out share where a metric trains a predictor: 10,000 training
# and 5,000 test points of 15,000.
TEST_FRACTION = 1 / 3


def check_arrays(codes, factors):
    """(codes float64, factors) after refusing arrays no metric can score."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2:
        raise ValueError(f"codes must be shaped (examples, dims), got shape {codes.shape}")
    if factors.ndim != 2:
        raise ValueError(f"factors must be shaped (examples, factors), got shape {factors.shape}")
    if len(codes) != len(factors):
        raise ValueError(f"codes has {len(codes)} examples but factors has {len(factors)}")
    if len(codes) < 2:
        raise ValueError(f"need at least 2 examples, got {len(codes)}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors must be integer factor values, got dtype {factors.dtype}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")
    return codes.astype("float64"), factors


def need(count, what, metric, minimum=2):
    """Refuses fewer than `minimum` of `what` (code dimensions, factors) for `metric`."""
    if count < minimum:
        raise ValueError(f"{metric} needs at least {minimum} {what}, got {count}")


def check_counts(minimum=1, **counts):
    """Refuses any count (a sample size) that is not an integer >= `minimum`."""
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")


def split(codes, factors, test_fraction, seed):
    """A seeded (train codes, train factors, test codes, test factors) split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(codes))
    cut = int(round(len(codes) * test_fraction))
    if cut < 1 or cut > len(codes) - 1:
        raise ValueError(f"{len(codes)} examples are too few to split with test_fraction {test_fraction}")
    test, train = order[:cut], order[cut:]
    return codes[train], factors[train], codes[test], factors[test]


def discretize(codes, num_bins=20):
    """Bins each code dimension into `num_bins` equal-width bins over its range
    (disentanglement_lib's `histogram_discretizer`).

    Args:
        codes: array (examples, dims).
        num_bins: int. Bins per dimension, >= 2. Defaults to 20.

    Returns:
        int64 array (examples, dims) of bin indices in [0, num_bins).

    Example:

    >>> discretize(np.arange(4.0)[:, None], num_bins=2).ravel().tolist()
    [0, 0, 1, 1]
    """
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins}")
    codes = np.asarray(codes, "float64")
    binned = np.empty(codes.shape, "int64")
    for i, column in enumerate(codes.T):
        edges = np.histogram_bin_edges(column, num_bins)
        binned[:, i] = np.digitize(column, edges[1:-1])
    return binned


def mutual_information(a, b):
    """Mutual information in nats between two discrete variables from paired samples.

    I(a; b) = sum_ij p(i, j) log(p(i, j) / (p(i) p(j))), with the empirical joint.

    Args:
        a, b: 1-D integer arrays of equal length.

    Returns:
        float, >= 0.

    Example:

    >>> round(mutual_information(np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])), 4)  # ln 2
    0.6931
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D and of equal length, got {a.shape} and {b.shape}")
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= len(a)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    seen = joint > 0
    return float(max(0.0, np.sum(joint[seen] * np.log(joint[seen] / outer[seen]))))


def information_matrix(codes, factors, num_bins=20):
    """(dims, factors) mutual information in nats between each discretized code dimension
    and each factor: the estimator MIG and Modularity share."""
    binned = discretize(codes, num_bins)
    return np.array([
        [mutual_information(binned[:, j], factors[:, k]) for k in range(factors.shape[1])]
        for j in range(codes.shape[1])
    ])


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
    """A function images -> codes: a model's latent means (`encoder_means`), or the function given."""
    if hasattr(model_or_encode_fn, "mean_code"):
        return encoder_means(model_or_encode_fn)
    if callable(model_or_encode_fn):
        return model_or_encode_fn
    raise ValueError(f"expected a model with `mean_code` or a function images -> codes, got {model_or_encode_fn!r}")


def codes_of(encode_fn, images):
    """`encode_fn(images)` as float64 (examples, dims) codes, refusing any other shape."""
    codes = np.asarray(encode_fn(images), "float64")
    if codes.ndim != 2 or len(codes) != len(images):
        raise ValueError(f"encode_fn must map {len(images)} images to (examples, dims) codes, got {codes.shape}")
    return codes
