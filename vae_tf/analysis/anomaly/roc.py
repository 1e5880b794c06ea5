"""Figures of merit of a score separating normal from anomalous data: ROC, AUROC,
AUPRC, FPR at 95% TPR, and precision and recall at a threshold."""

import numpy as np

from vae_tf.analysis.anomaly.thresholds import check_scores


def average_ranks(values):
    """1-based ranks of `values`, ties sharing the mean of their ranks."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values, and each run's mean rank.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run_ranks = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return ranks


def roc_curve(in_scores, out_scores):
    """ROC curve with out-of-distribution as the positive class (flag when score >= t).

    Returns:
        (fpr, tpr): arrays from (0, 0) to (1, 1), one point per distinct score value.
    """
    in_scores = check_scores(in_scores, "in_scores")
    out_scores = check_scores(out_scores, "out_scores")
    thresholds = np.unique(np.concatenate([in_scores, out_scores]))[::-1]
    in_sorted, out_sorted = np.sort(in_scores), np.sort(out_scores)
    # Number of scores >= t, for every distinct t (highest first).
    fp = len(in_sorted) - np.searchsorted(in_sorted, thresholds, side="left")
    tp = len(out_sorted) - np.searchsorted(out_sorted, thresholds, side="left")
    fpr = np.r_[0.0, fp / len(in_sorted)]
    tpr = np.r_[0.0, tp / len(out_sorted)]
    return fpr, tpr


def roc_report(in_scores, out_scores):
    """AUROC, AUPRC and FPR at 95% TPR, with out-of-distribution as the positive class.

    - `auroc`: the Mann-Whitney statistic P(out > in) + P(out = in) / 2, from average
      ranks (ties count one half).
    - `auprc`: average precision, sum over distinct thresholds of (recall step) x
      precision, flagging scores >= t.
    - `fpr_at_95_tpr`: fraction of in-distribution scores flagged at the highest
      threshold that flags at least 95% of out-of-distribution scores.

    Args:
        in_scores: 1-D array. Scores of in-distribution (normal) data.
        out_scores: 1-D array. Scores of out-of-distribution (anomalous) data.

    Returns:
        A dict of floats {"auroc", "auprc", "fpr_at_95_tpr"}.

    Example:

    >>> roc_report([0.1, 0.2, 0.3], [0.25, 0.4])
    {'auroc': 0.8333333333333334, 'auprc': 0.8333333333333333, 'fpr_at_95_tpr': 0.3333333333333333}
    """
    in_scores = check_scores(in_scores, "in_scores")
    out_scores = check_scores(out_scores, "out_scores")
    n_in, n_out = len(in_scores), len(out_scores)
    ranks = average_ranks(np.concatenate([in_scores, out_scores]))
    auroc = (ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0) / (n_in * n_out)
    fpr, tpr = roc_curve(in_scores, out_scores)
    fp, tp = fpr[1:] * n_in, tpr[1:] * n_out
    precision = tp / (tp + fp)
    auprc = float(np.sum(np.diff(tpr) * precision))
    fpr_at_95 = float(fpr[np.argmax(tpr >= 0.95)])
    return {"auroc": float(auroc), "auprc": auprc, "fpr_at_95_tpr": fpr_at_95}


def threshold_report(in_scores, out_scores, threshold):
    """Precision and recall of flagging scores strictly above `threshold` (`is_anomaly`),
    with out-of-distribution (anomalous) data as the positive class.

    Args:
        in_scores: 1-D array. Scores of normal data.
        out_scores: 1-D array. Scores of anomalous data.
        threshold: float. E.g. a `calibrate` record's "threshold".

    Returns:
        A dict {"threshold", "precision" (None when nothing is flagged), "recall",
        "false_positive_rate", "flagged_out", "flagged_in"}.

    Example:

    >>> threshold_report([0.1, 0.2, 0.3], [0.25, 0.4], threshold=0.22)["precision"]
    0.6666666666666666
    """
    in_scores = check_scores(in_scores, "in_scores")
    out_scores = check_scores(out_scores, "out_scores")
    flagged_in, flagged_out = int(np.sum(in_scores > threshold)), int(np.sum(out_scores > threshold))
    flagged = flagged_in + flagged_out
    return {
        "threshold": float(threshold),
        "precision": flagged_out / flagged if flagged else None,
        "recall": flagged_out / len(out_scores),
        "false_positive_rate": flagged_in / len(in_scores),
        "flagged_out": flagged_out,
        "flagged_in": flagged_in,
    }
