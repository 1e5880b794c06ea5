"""Intervention-based metrics: the FactorVAE score, the β-VAE metric and IRS, which ask how
codes move when some factors are held fixed and others vary.

The FactorVAE score and the β-VAE metric draw their own images from a factor sampler: an
object with `num_factors`, `sample(num, rng)` -> (images, factors) and
`sample_fixed(num, factor, rng)` -> (images, factors) sharing one random value of
`factor`, e.g. `vae_tf.data.dsprites.DSprites()`. IRS, as disentanglement_lib computes
it, needs only codes and factors.
"""

import logging
import warnings

import numpy as np

from vae_tf.analysis.disentanglement.common import as_encode_fn, check_arrays, check_counts, codes_of, discretize

log = logging.getLogger(__name__)


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
        sampler: a factor sampler (module docstring), e.g. `DSprites()`.
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
    check_counts(num_train=num_train, num_eval=num_eval)
    check_counts(2, batch_size=batch_size, num_variance_estimate=num_variance_estimate)
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


def _difference_votes(encode_fn, sampler, num_votes, batch_size, rng, chunk=32, what="votes"):
    """(features (num_votes, dims), fixed factors (num_votes,)): per vote, the mean over
    `batch_size` pairs of |z1 - z2|, each pair sharing the value of one random factor."""
    features, labels = [], []
    report_every = max(chunk, num_votes // 10 // chunk * chunk)
    for start in range(0, num_votes, chunk):
        if start and start % report_every == 0:
            log.info("β-VAE metric: %d of %d %s", start, num_votes, what)
        fixed = rng.integers(sampler.num_factors, size=min(chunk, num_votes - start))
        # A pair per call: each pair has its own value of the fixed factor, as in
        # disentanglement_lib (the paper leaves open whether pairs of a batch share it).
        images = np.concatenate([sampler.sample_fixed(2, int(k), rng)[0] for k in fixed for _ in range(batch_size)])
        codes = codes_of(encode_fn, images).reshape(len(fixed), batch_size, 2, -1)
        features.append(np.abs(codes[:, :, 0] - codes[:, :, 1]).mean(axis=1))
        labels.append(fixed)
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(model_or_encode_fn, sampler, num_train=10_000, num_eval=5_000, batch_size=64, seed=0):
    """The β-VAE metric (Higgins et al. 2017, "β-VAE: Learning Basic Visual Concepts with a
    Constrained Variational Framework", ICLR, section 3 and appendix A.4).

    A vote: pick a factor at random; draw `batch_size` pairs of images whose two images
    share that factor's value (all other factors drawn independently); the vote's feature
    is the mean over pairs of |z1 − z2|, the codes' absolute difference. A linear
    classifier learns to name the fixed factor from the feature; the score is its accuracy
    on fresh votes. Where the dimensions are disentangled, the fixed factor's dimension
    has difference 0 and the classifier reads it off. As in disentanglement_lib
    (`beta_vae_sklearn`): 64 pairs per vote, 10,000 training and 5,000 evaluation votes,
    each pair with its own value of the fixed factor, and
    `sklearn.linear_model.LogisticRegression` with its defaults (L2, C = 1, lbfgs,
    multinomial) on the raw features, where the paper trained a linear softmax classifier
    with Adagrad. scikit-learn is already a dependency (SAP, DCI), and its solver gives
    the numbers disentanglement_lib publishes, so no classifier of our own is written.

    Args:
        model_or_encode_fn: a model (its latent means are used) or a function
            mapping (n, H, W, C) images to (n, dims) codes.
        sampler: a factor sampler (module docstring), e.g. `DSprites()`.
        num_train: int. Training votes (at least two different factors must come up).
            Defaults to 10,000.
        num_eval: int. Evaluation votes. Defaults to 5,000.
        batch_size: int. Pairs per vote. Defaults to 64.
        seed: int. Seeds every draw and the classifier. Defaults to 0.

    Returns:
        dict with "eval_accuracy" (the score, in [0, 1]; a code that tells nothing
        scores about 1 / #factors) and "train_accuracy".

    Example:

    >>> beta_vae_score(model, DSprites())["eval_accuracy"]
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    check_counts(num_train=num_train, num_eval=num_eval, batch_size=batch_size)
    encode_fn = as_encode_fn(model_or_encode_fn)
    rng = np.random.default_rng(seed)
    log.info("β-VAE metric: %d training and %d evaluation votes of %d pairs each", num_train, num_eval, batch_size)
    train, train_labels = _difference_votes(encode_fn, sampler, num_train, batch_size, rng, what="training votes")
    if len(np.unique(train_labels)) < 2:
        raise ValueError(f"num_train {num_train} votes fixed a single factor; the β-VAE metric needs more votes")
    evaluation, eval_labels = _difference_votes(encode_fn, sampler, num_eval, batch_size, rng, what="evaluation votes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = LogisticRegression(random_state=seed).fit(train, train_labels)
    if classifier.n_iter_.max() >= classifier.max_iter:
        # On raw features lbfgs may stop before converging; disentanglement_lib kept the
        # default iterations all the same, and so do we, for comparable numbers.
        log.info("β-VAE metric: the classifier stopped at its %d iterations", classifier.max_iter)
    return {
        "eval_accuracy": float(classifier.score(evaluation, eval_labels)),
        "train_accuracy": float(classifier.score(train, train_labels)),
    }


def irs(codes, factors, diff_quantile=0.99, num_bins=20):
    """Interventional Robustness Score (Suter, Miladinović, Schölkopf & Bauer 2019,
    "Robustly Disentangled Causal Mechanisms: Validating Deep Representations for
    Interventional Robustness", ICML, section 4), as disentanglement_lib computes it.

    For code dimension j and factor k: group the examples by k's value; within a group
    (k held fixed while the other factors vary, an intervention on the nuisances), take
    the `diff_quantile` quantile of |z_j − E[z_j | k]|; average over k's values and divide
    by z_j's largest deviation from its mean over all examples. One minus that is
    IRS[j, k], how robust z_j is to changes of everything but k; dimension j scores its
    best factor, and IRS is the mean of those scores weighted by each dimension's largest
    deviation. Dimensions of zero variance are dropped (none left: 0). disentanglement_lib's
    settings: 10,000 points (`DEFAULT_SAMPLES["irs"]`), the 0.99 quantile (1.0 is the
    paper's maximum) and the factors, too, discretized into 20 equal-width bins, so a
    factor with more than 20 values is grouped in pairs of neighbouring values (codes
    equal to dSprites' factors then score below 1, as MIG does).

    Args:
        codes: array (examples, dims).
        factors: integer array (examples, factors).
        diff_quantile: float in (0, 1]. Quantile of the within-group deviations. Defaults to 0.99.
        num_bins: int. Bins per factor. Defaults to 20.

    Returns:
        dict with "irs" (in [0, 1]; 1 when each dimension is constant once its factor is
        fixed) and "active_dims" (dimensions of nonzero variance).

    Example:

    >>> irs(codes, factors)["irs"]  # codes (10000, 10), factors (10000, 5)
    """
    if not 0 < diff_quantile <= 1:
        raise ValueError(f"diff_quantile must be in (0, 1], got {diff_quantile}")
    codes, factors = check_arrays(codes, factors)
    groups = discretize(factors, num_bins)
    codes = codes[:, codes.var(axis=0) > 0]
    if codes.shape[1] == 0:
        return {"irs": 0.0, "active_dims": 0}
    largest = np.abs(codes - codes.mean(axis=0)).max(axis=0)
    deviation = np.zeros((codes.shape[1], factors.shape[1]))
    for k, column in enumerate(groups.T):
        values = np.unique(column)
        for value in values:
            group = codes[column == value]
            deviation[:, k] += np.quantile(np.abs(group - group.mean(axis=0)), diff_quantile, axis=0)
        deviation[:, k] /= len(values)
    robustness = 1 - deviation / largest[:, None]
    return {"irs": float(np.average(robustness.max(axis=1), weights=largest)), "active_dims": codes.shape[1]}
