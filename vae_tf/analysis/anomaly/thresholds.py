"""Thresholds: calibrated on normal data to flag a chosen fraction, and the flags."""

import math

import numpy as np


def check_scores(scores, name="scores"):
    scores = np.asarray(scores, dtype="float64")
    if scores.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-example scores, got shape {scores.shape}")
    if len(scores) == 0:
        raise ValueError(f"{name} are empty")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return scores


FPR = 0.01  # `calibrate`'s share of normal inputs flagged


def calibrate(scores, fpr=FPR, name="score", options=None):
    """A threshold that flags about `fpr` of normal data, as a serializable record.

    The threshold is the (floor(fpr * n) + 1)-th largest calibration score: at most
    floor(fpr * n) calibration scores lie strictly above it (exactly that many without
    ties), so `is_anomaly` flags that fraction of the calibration data.

    Args:
        scores: 1-D array. Scores of normal (validation) data, higher = more anomalous.
        fpr: float in (0, 1). Fraction of normal data to flag. Defaults to `FPR`.
        name: str. Name of the score, stored in the record. Defaults to "score".
        options: dict or None. The `score` options that made `scores` (e.g.
            regret_steps), stored so an export recomputes the same score. Defaults to None.

    Returns:
        A dict {"score": name, "fpr": fpr, "threshold": float, "num_examples": n}
        (and "options" if given), JSON-serializable.

    Example:

    >>> calibrate([3.0, 1.0, 4.0, 1.5, 9.0, 2.6], fpr=0.2, name="complexity")
    {'score': 'complexity', 'fpr': 0.2, 'threshold': 4.0, 'num_examples': 6}
    >>> is_anomaly([3.0, 5.0, 9.5], 4.0).tolist()
    [False, True, True]
    """
    scores = check_scores(scores)
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    k = int(math.floor(fpr * len(scores)))
    threshold = float(np.sort(scores)[::-1][k])
    record = {"score": str(name), "fpr": float(fpr), "threshold": threshold, "num_examples": len(scores)}
    return record if options is None else {**record, "options": dict(options)}


def is_anomaly(scores, threshold):
    """Flags scores strictly above a threshold.

    Args:
        scores: 1-D array of scores, or the dict `score` returns (then the record's
            score name picks the entry).
        threshold: float, or a record from `calibrate`.

    Returns:
        A bool numpy array, one flag per example.
    """
    if isinstance(threshold, dict):
        if isinstance(scores, dict):
            if threshold["score"] not in scores:
                raise ValueError(
                    f"the threshold is for score {threshold['score']!r}, which is not among "
                    f"{sorted(scores)}"
                )
            scores = scores[threshold["score"]]
        threshold = threshold["threshold"]
    return check_scores(scores) > float(threshold)
