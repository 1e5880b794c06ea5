"""Sample quality in a feature space: the Fréchet distance, and precision and recall.

Both compare a set of generated examples with a set of real ones, each given as feature
vectors (N, D), e.g. the penultimate layer of `vae_tf.analysis.feature_classifier`. They
are plain numpy; nothing here trains or writes.

- `frechet_distance`: the Fréchet (2-Wasserstein) distance between the Gaussians with the
  two sets' means and covariances (the measure behind FID, Heusel et al. 2017), here in
  whatever features are given: Inception's in the papers, vae_tf's own classifier's here.
- `precision_recall`: Kynkäänniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and
  Recall Metric for Assessing Generative Models", NeurIPS 2019. Each set's manifold is the
  union of balls around its points reaching their k-th nearest neighbour in that set;
  precision is the fraction of generated points inside the real manifold (are samples
  realistic?), recall the fraction of real points inside the generated one (is the data's
  variety covered?).

Example:

>>> fd = frechet_distance(real_features, generated_features)
>>> precision, recall = precision_recall(real_features, generated_features)
"""

import numpy as np

NEAREST_K = 3  # the k of the k-NN manifolds (the paper's choice)
BLOCK_ENTRIES = 4_000_000  # distances held at once (float64: 32 MB), whatever the set sizes


def _features(name, features, minimum=2):
    """`features` as a float64 (N, D) array, checked."""
    features = np.asarray(features, "float64")
    if features.ndim != 2:
        raise ValueError(f"{name} must be feature vectors (N, D), got shape {features.shape}")
    if len(features) < minimum:
        raise ValueError(f"{name} needs at least {minimum} vectors, got {len(features)}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return features


def moments(features):
    """The mean (D,) and covariance (D, D) of feature vectors (N, D), N >= 2 (unbiased)."""
    features = _features("features", features)
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], -1)


def _symmetric(matrix):
    return (matrix + matrix.T) / 2


def _psd_sqrt(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix; rounding's
    tiny negative eigenvalues count as zero."""
    values, vectors = np.linalg.eigh(_symmetric(matrix))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b):
    """The Fréchet distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    |mean_a - mean_b|^2 + tr(cov_a) + tr(cov_b) - 2 tr((cov_a^1/2 cov_b cov_a^1/2)^1/2):
    the middle matrix is symmetric positive semi-definite, so both square roots come from
    symmetric eigendecompositions, exact up to rounding (no iterative `sqrtm`, no complex
    parts to discard), and the trace equals tr((cov_a cov_b)^1/2) of the usual formula.

    Args:
        mean_a: array (D,). cov_a: array (D, D), symmetric positive semi-definite.
        mean_b: array (D,). cov_b: array (D, D), likewise.

    Returns:
        float, >= 0 up to rounding (squared units of the features).

    Example:

    >>> frechet_distance_from_moments(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
    4.0
    """
    mean_a, mean_b = np.asarray(mean_a, "float64"), np.asarray(mean_b, "float64")
    cov_a, cov_b = np.asarray(cov_a, "float64"), np.asarray(cov_b, "float64")
    size = len(mean_a)
    if mean_a.shape != (size,) or mean_b.shape != (size,) or cov_a.shape != (size, size) \
            or cov_b.shape != (size, size):
        raise ValueError(f"means must be (D,) and covariances (D, D) of one D, got {mean_a.shape}, "
                         f"{cov_a.shape}, {mean_b.shape}, {cov_b.shape}")
    root_a = _psd_sqrt(cov_a)
    middle = np.linalg.eigvalsh(_symmetric(root_a @ cov_b @ root_a))
    cross = np.sqrt(np.clip(middle, 0.0, None)).sum()
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    return float(max(distance, 0.0))


def frechet_distance(features_a, features_b):
    """The Fréchet distance between Gaussians fitted to two sets of feature vectors.

    Args:
        features_a: array (N, D), N >= 2. E.g. the real examples' features.
        features_b: array (M, D), M >= 2. E.g. the generated examples'.

    Returns:
        float, >= 0; 0 for two sets with equal means and covariances.

    Example:

    >>> frechet_distance(np.random.randn(500, 8), np.random.randn(500, 8) + 1)  # about 8
    """
    a, b = _features("features_a", features_a), _features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b differ in width: {a.shape[1]} and {b.shape[1]}")
    return frechet_distance_from_moments(*moments(a), *moments(b))


def _squared_distances(rows, columns, column_norms):
    """Squared Euclidean distances (len(rows), len(columns)), clipped at 0 against rounding."""
    row_norms = np.einsum("ij,ij->i", rows, rows)
    return np.maximum(row_norms[:, None] - 2 * rows @ columns.T + column_norms[None, :], 0.0)


def _blocks(count, width):
    """Row slices of at most `BLOCK_ENTRIES` distances to `width` columns."""
    step = max(1, BLOCK_ENTRIES // max(width, 1))
    return [slice(start, min(start + step, count)) for start in range(0, count, step)]


def _radii(features, k, progress):
    """Squared distance from each vector to its k-th nearest other vector of the set."""
    norms = np.einsum("ij,ij->i", features, features)
    radii = np.empty(len(features))
    for rows in _blocks(len(features), len(features)):
        distances = _squared_distances(features[rows], features, norms)
        # Index k, not k - 1: each row's own zero distance is its smallest.
        radii[rows] = np.partition(distances, k, axis=1)[:, k]
        progress(rows.stop - rows.start)
    return radii


def precision_recall(real, generated, k=NEAREST_K, progress=None):
    """Improved precision and recall of a generative model (Kynkäänniemi et al. 2019).

    The real manifold is the union of the balls around each real vector whose radius is
    the distance to its k-th nearest real neighbour; likewise the generated manifold.
    Precision is the fraction of generated vectors inside the real manifold; recall the
    fraction of real vectors inside the generated manifold. Low precision: samples unlike
    any data (noise, artefacts). Low recall: data the sampler never produces (a collapsed
    or too narrow sampler). Distances are computed in blocks of `BLOCK_ENTRIES`, so two
    sets of 10,000 need tens of megabytes, not the 800 MB of a full distance matrix.

    Args:
        real: array (N, D), N > k. The real examples' features.
        generated: array (M, D), M > k. The generated examples'.
        k: int >= 1. The neighbour defining each ball. Defaults to `NEAREST_K` (the paper's 3).
        progress: callable or None. Called with the number of rows done after each block
            (N + 2 M rows in all), e.g. to advance a progress bar. Defaults to None.

    Returns:
        (precision, recall), floats in [0, 1].

    Example:

    >>> precision_recall(features, features)  # identical sets
    (1.0, 1.0)
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k}")
    real = _features("real", real, minimum=k + 1)
    generated = _features("generated", generated, minimum=k + 1)
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"real and generated differ in width: {real.shape[1]} and {generated.shape[1]}")
    progress = progress or (lambda rows: None)
    real_radii, generated_radii = _radii(real, k, progress), _radii(generated, k, progress)
    real_norms = np.einsum("ij,ij->i", real, real)
    realistic = np.zeros(len(generated), bool)  # inside the real manifold
    covered = np.zeros(len(real), bool)  # inside the generated manifold
    for rows in _blocks(len(generated), len(real)):
        distances = _squared_distances(generated[rows], real, real_norms)
        realistic[rows] = np.any(distances <= real_radii[None, :], axis=1)
        covered |= np.any(distances <= generated_radii[rows, None], axis=0)
        progress(rows.stop - rows.start)
    return float(realistic.mean()), float(covered.mean())
