"""Predictor-based metrics: SAP, DCI and Explicitness, each from classifiers or regressors
that predict the factors from the codes (scikit-learn, a dependency of the package)."""

import numpy as np

from vae_tf.analysis.disentanglement.common import TEST_FRACTION, check_arrays, need, split


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
    codes, factors = check_arrays(codes, factors)
    need(codes.shape[1], "code dimensions", "SAP")
    dims, num_factors = codes.shape[1], factors.shape[1]
    scores = np.zeros((dims, num_factors))
    if continuous:
        for j in range(dims):
            for k in range(num_factors):
                if codes[:, j].var() > 1e-12 and factors[:, k].var() > 0:
                    scores[j, k] = np.corrcoef(codes[:, j], factors[:, k])[0, 1] ** 2
    else:
        from sklearn.svm import LinearSVC

        train_codes, train_factors, test_codes, test_factors = split(codes, factors, test_fraction, seed)
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

    codes, factors = check_arrays(codes, factors)
    need(codes.shape[1], "code dimensions", "DCI")
    need(factors.shape[1], "factors", "DCI")
    # Trees break ties between equally good splits by feature order; fitting the columns in
    # an order fixed by their contents makes the scores exactly invariant to permutations.
    canonical = np.array(sorted(range(codes.shape[1]), key=lambda j: codes[:, j].tobytes()))
    codes = codes[:, canonical]
    train_codes, train_factors, test_codes, test_factors = split(codes, factors, test_fraction, seed)
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




def explicitness(codes, factors, test_fraction=TEST_FRACTION, seed=0):
    """Explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings With the
    F-Statistic Loss", NeurIPS, section 3): can a simple classifier read each factor off
    the whole code?

    Per factor, a logistic regression from all code dimensions to the factor's value is
    trained; for each value, the one-vs-rest ROC-AUC of its predicted probability on
    held-out examples is taken; explicitness is the mean over values and factors. As in
    disentanglement_lib: codes standardized with the training part's mean and standard
    deviation (a constant dimension is left at 0), `sklearn.linear_model.LogisticRegression`
    with its defaults (L2, C = 1, lbfgs, multinomial), 10,000 training and 5,000 test
    points (`DEFAULT_SAMPLES["explicitness"]` = 15,000 split 2:1). scikit-learn is
    already a dependency (SAP, DCI) and its solver is the one the published numbers used,
    so no classifier of our own is written. A value absent from the held-out part (or
    making up all of it) has no AUC and is left out of its factor's mean.

    Args:
        codes: array (examples, dims).
        factors: integer array (examples, factors); every factor must take >= 2 values
            in the training and in the held-out part.
        test_fraction: float in (0, 1). Held-out part. Defaults to 1/3.
        seed: int. The split seed. Defaults to 0.

    Returns:
        dict with "explicitness" (held-out AUC, in [0, 1]: 1 when every value is
        separated, 0.5 for a code that tells nothing) and "explicitness_train".

    Example:

    >>> explicitness(codes, factors)["explicitness"]
    """
    from sklearn.linear_model import LogisticRegression

    codes, factors = check_arrays(codes, factors)
    train_codes, train_factors, test_codes, test_factors = split(codes, factors, test_fraction, seed)
    mean, scale = train_codes.mean(axis=0), train_codes.std(axis=0)
    scale[scale == 0] = 1.0  # a constant dimension: 0 after centring, not 0/0
    train_codes, test_codes = (train_codes - mean) / scale, (test_codes - mean) / scale
    train_auc, test_auc = [], []
    for k in range(factors.shape[1]):
        for part, values in (("training", train_factors[:, k]), ("held-out", test_factors[:, k])):
            if len(np.unique(values)) < 2:
                raise ValueError(f"factor {k} takes a single value in the {part} part; "
                                 "Explicitness needs every factor to vary")
        classifier = LogisticRegression().fit(train_codes, train_factors[:, k])
        train_auc.append(_mean_auc(classifier, train_codes, train_factors[:, k]))
        test_auc.append(_mean_auc(classifier, test_codes, test_factors[:, k]))
    return {"explicitness": float(np.mean(test_auc)), "explicitness_train": float(np.mean(train_auc))}


def _mean_auc(classifier, codes, values):
    """Mean one-vs-rest ROC-AUC over the classifier's values present in `values`."""
    from sklearn.metrics import roc_auc_score

    probabilities = classifier.predict_proba(codes)
    scores = [roc_auc_score(values == value, probabilities[:, i])
              for i, value in enumerate(classifier.classes_) if 0 < np.sum(values == value) < len(values)]
    return np.mean(scores)
