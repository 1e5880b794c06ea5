"""Disentanglement metrics: MIG, SAP, DCI and the FactorVAE score.

Each metric follows its paper; where a paper leaves a choice open (sample sizes,
discretization, which classifier) the defaults are those of disentanglement_lib
(Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations"), the setting published numbers are usually compared in.

`codes` are (examples, dims) float arrays (for a VAE the posterior means), `factors`
(examples, factors) integer arrays of ground-truth factor indices (for dSprites the
labels of `load_data("dsprites")`, or `DSprites.sample`). Scores are in [0, 1].

Example:

>>> sprites = DSprites()
>>> images, factors = sprites.sample(10_000, np.random.default_rng(0))
>>> codes = encoder_means(model)(images)
>>> mig(codes, factors)
"""

import logging

import numpy as np

from vae_tf.analysis.factor_vae import as_encode_fn, codes_of, encoder_means, factor_vae_score  # noqa: F401  (encoder_means: the docstring example)

log = logging.getLogger(__name__)
# Sample sizes of disentanglement_lib's defaults: MIG on 10,000 points; SAP and DCI on
# 10,000 training and 5,000 test points; FactorVAE with 10,000 points for the global
# variances, 10,000 training and 5,000 evaluation votes of 64 images each.
DEFAULT_SAMPLES = {
    "mig": 10_000,
    "sap": 15_000,
    "dci": 15_000,
    "factor_vae_variance": 10_000,
    "factor_vae_train": 10_000,
    "factor_vae_eval": 5_000,
}
TEST_FRACTION = 1 / 3


def _check(codes, factors):
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


def _need(count, what, metric, minimum=2):
    if count < minimum:
        raise ValueError(f"{metric} needs at least {minimum} {what}, got {count}")


def _split(codes, factors, test_fraction, seed):
    """A seeded (train, test) split of the examples."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(codes))
    cut = int(round(len(codes) * test_fraction))
    if cut < 1 or cut > len(codes) - 1:
        raise ValueError(f"{len(codes)} examples are too few to split with test_fraction {test_fraction}")
    test, train = order[:cut], order[cut:]
    return codes[train], factors[train], codes[test], factors[test]


def discretize(codes, num_bins=20):
    """Bins each code dimension into `num_bins` equal-width bins over its range.

    Args:
        codes: array (examples, dims).
        num_bins: int. Bins per dimension, >= 2. Defaults to 20.

    Returns:
        int64 array (examples, dims) of bin indices in [0, num_bins).
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


def mig(codes, factors, num_bins=20):
    """Mutual information gap (Chen et al. 2018, "Isolating Sources of Disentanglement in
    Variational Autoencoders").

    For each factor v_k: the gap between the largest and second-largest mutual
    information I(z_j; v_k) over code dimensions, divided by the entropy H(v_k), averaged
    over factors. I(z_j; v_k) is estimated as in disentanglement_lib: each code dimension
    is discretized into `num_bins` equal-width bins and the discrete mutual information
    of the empirical joint is taken (the paper's own estimator integrates over q(z|x)).
    Binning costs information when a factor has more values than `num_bins`, so 20 bins
    (disentanglement_lib's setting, kept for comparable numbers) cap MIG below 1 on
    dSprites: codes equal to the factors score exactly (2 + ln 20 / ln 40 + 2 * 0.85) / 5
    = 0.902 on the full grid (20 bins hold 2 of the 40 orientations each; 32 positions
    fill 12 bins with 2 and 8 with 1), 0.896 on 10,000 random draws; 40 bins give 1.000
    and 0.988.

    Args:
        codes: array (examples, dims), dims >= 2.
        factors: integer array (examples, factors); every factor must take >= 2 values.
        num_bins: int. Histogram bins per code dimension. Defaults to 20.

    Returns:
        float in [0, 1].

    Example:

    >>> mig(codes, factors)  # codes (10000, 10), factors (10000, 5)
    """
    codes, factors = _check(codes, factors)
    _need(codes.shape[1], "code dimensions", "MIG")
    binned = discretize(codes, num_bins)
    information = np.array([
        [mutual_information(binned[:, j], factors[:, k]) for k in range(factors.shape[1])]
        for j in range(codes.shape[1])
    ])
    entropy = np.array([mutual_information(f, f) for f in factors.T])
    if (entropy == 0).any():
        raise ValueError(f"factor {int(np.argmin(entropy))} takes a single value; MIG needs every factor to vary")
    top = np.sort(information, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropy))


def sap(codes, factors, continuous=False, test_fraction=TEST_FRACTION, seed=0):
    """Separated attribute predictability (Kumar et al. 2018, "Variational Inference of
    Disentangled Latent Concepts from Unlabeled Observations").

    A score matrix S[j, k] says how well code dimension j alone predicts factor k; SAP
    is the mean over factors of the gap between the two best dimensions. Continuous
    factors: S is the R^2 of a linear regression (the squared correlation). Discrete
    factors: S is the test accuracy of a linear classifier on that one dimension
    (`sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`, as disentanglement_lib),
    trained on a seeded split of the examples. The paper gives no sample size;
    disentanglement_lib's 10,000 train and 5,000 test points are `DEFAULT_SAMPLES["sap"]`.

    Args:
        codes: array (examples, dims), dims >= 2.
        factors: integer array (examples, factors).
        continuous: bool. Treat factors as continuous (R^2) instead of discrete
            (classification accuracy). Defaults to False, as disentanglement_lib.
        test_fraction: float in (0, 1). Held-out part for the classifiers. Defaults to 1/3.
        seed: int. The split seed. Defaults to 0.

    Returns:
        float in [0, 1].
    """
    codes, factors = _check(codes, factors)
    _need(codes.shape[1], "code dimensions", "SAP")
    dims, num_factors = codes.shape[1], factors.shape[1]
    scores = np.zeros((dims, num_factors))
    if continuous:
        for j in range(dims):
            for k in range(num_factors):
                if codes[:, j].var() > 1e-12 and factors[:, k].var() > 0:
                    scores[j, k] = np.corrcoef(codes[:, j], factors[:, k])[0, 1] ** 2
    else:
        from sklearn.svm import LinearSVC

        train_codes, train_factors, test_codes, test_factors = _split(codes, factors, test_fraction, seed)
        for j in range(dims):
            for k in range(num_factors):
                if len(np.unique(train_factors[:, k])) < 2:
                    scores[j, k] = np.mean(test_factors[:, k] == train_factors[0, k])
                    continue
                classifier = LinearSVC(C=0.01, class_weight="balanced")
                classifier.fit(train_codes[:, j : j + 1], train_factors[:, k])
                scores[j, k] = np.mean(classifier.predict(test_codes[:, j : j + 1]) == test_factors[:, k])
    top = np.sort(scores, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def _normalized_entropy(weights, axis):
    """Entropy of weights normalized along `axis`, in base (length along axis)."""
    total = weights.sum(axis=axis, keepdims=True)
    p = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=axis) / np.log(weights.shape[axis])


def dci(codes, factors, test_fraction=TEST_FRACTION, seed=0):
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A
    Framework for the Quantitative Evaluation of Disentangled Representations").

    As in the paper, one regressor per factor predicts it from all code dimensions and
    R[j, k] is the importance of dimension j for factor k. The regressor is gradient
    boosted trees (`sklearn.ensemble.GradientBoostingRegressor`, its defaults,
    `random_state=seed`; R = its impurity-based feature importances), fitted to the
    factor index; the paper uses lasso or random forests, disentanglement_lib a boosted
    classifier per factor (one tree per class and round: on this machine ~40x slower
    for the 40 orientations, about two minutes for one factor on 2,000 points).
    Disentanglement: 1 - entropy (base #factors) of each dimension's normalized row of
    R, weighted by the dimension's share of total importance. Completeness: 1 - entropy
    (base #dims) of each factor's normalized column, weighted by the factor's share.
    Informativeness: the regressors' mean R^2 on held-out examples, i.e. one minus the
    paper's prediction error normalized by the factor's variance.

    Args:
        codes: array (examples, dims), dims >= 2.
        factors: integer array (examples, factors), factors >= 2.
        test_fraction: float in (0, 1). Held-out part. Defaults to 1/3 (10,000 train
            and 5,000 test points at `DEFAULT_SAMPLES["dci"]`).
        seed: int. Split and tree seed. Defaults to 0.

    Returns:
        dict with "disentanglement", "completeness", "informativeness" (held-out R^2)
        and "informativeness_train", floats (the first two in [0, 1]), and
        "importance", the (dims, factors) matrix R as a nested list.

    Example:

    >>> dci(codes, factors)["disentanglement"]
    """
    from sklearn.ensemble import GradientBoostingRegressor

    codes, factors = _check(codes, factors)
    _need(codes.shape[1], "code dimensions", "DCI")
    _need(factors.shape[1], "factors", "DCI")
    # Trees break ties between equally good splits by feature order; fitting the columns in
    # an order fixed by their contents makes the scores exactly invariant to permutations.
    canonical = np.array(sorted(range(codes.shape[1]), key=lambda j: codes[:, j].tobytes()))
    codes = codes[:, canonical]
    train_codes, train_factors, test_codes, test_factors = _split(codes, factors, test_fraction, seed)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    train_r2, test_r2 = [], []
    for k in range(factors.shape[1]):
        if len(np.unique(train_factors[:, k])) < 2:
            raise ValueError(f"factor {k} takes a single value in the training part; DCI needs every factor to vary")
        model = GradientBoostingRegressor(random_state=seed).fit(train_codes, train_factors[:, k])
        importance[:, k] = model.feature_importances_
        train_r2.append(model.score(train_codes, train_factors[:, k]))
        test_r2.append(model.score(test_codes, test_factors[:, k]))
    importance[canonical] = importance.copy()
    total = importance.sum()
    dim_share = importance.sum(axis=1) / total if total > 0 else np.zeros(codes.shape[1])
    factor_share = importance.sum(axis=0) / total if total > 0 else np.zeros(factors.shape[1])
    return {
        "disentanglement": float(np.sum(dim_share * (1 - _normalized_entropy(importance, axis=1)))),
        "completeness": float(np.sum(factor_share * (1 - _normalized_entropy(importance, axis=0)))),
        "informativeness": float(np.mean(test_r2)),
        "informativeness_train": float(np.mean(train_r2)),
        "importance": importance.tolist(),
    }


def all_scores(model_or_encode_fn, sampler, seed=0, samples=None):
    """MIG, SAP, DCI and the FactorVAE score, at the default sample sizes.

    Args:
        model_or_encode_fn: a model (its latent means), or a function images -> codes.
        sampler: e.g. `vae_tf.data.dsprites.DSprites()` (see `factor_vae_score`).
        seed: int. Seeds every draw and split. Defaults to 0.
        samples: dict or None. Overrides of `DEFAULT_SAMPLES` entries (quick runs).
            Progress is logged (`logging`, INFO) metric by metric and, for the long
            FactorVAE part, about every tenth of its votes.

    Returns:
        A JSON-ready dict: {"mig", "sap", "dci": {...}, "factor_vae": {...}, "seed",
        "samples"}.

    Example:

    >>> json.dumps(all_scores(model, DSprites(), seed=0))
    """
    unknown = set(samples or {}) - set(DEFAULT_SAMPLES)
    if unknown:
        raise ValueError(f"unknown samples keys {sorted(unknown)}; known: {sorted(DEFAULT_SAMPLES)}")
    sizes = {**DEFAULT_SAMPLES, **(samples or {})}
    encode_fn = as_encode_fn(model_or_encode_fn)
    rng = np.random.default_rng(seed)

    def draw(num, metric):
        log.info("%s on %d images", metric, num)
        images, factors = sampler.sample(num, rng)
        return codes_of(encode_fn, images), factors

    return {
        "mig": mig(*draw(sizes["mig"], "MIG")),
        "sap": sap(*draw(sizes["sap"], "SAP"), seed=seed),
        "dci": dci(*draw(sizes["dci"], "DCI"), seed=seed),
        "factor_vae": factor_vae_score(
            encode_fn,
            sampler,
            num_train=sizes["factor_vae_train"],
            num_eval=sizes["factor_vae_eval"],
            num_variance_estimate=sizes["factor_vae_variance"],
            seed=seed,
        ),
        "seed": seed,
        "samples": sizes,
    }
