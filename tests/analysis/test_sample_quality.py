"""The Fréchet distance against closed forms, and precision and recall against the
identities of Kynkäänniemi et al. (2019): numpy only, no model."""

import numpy as np
import pytest

from vae_tf.analysis import sample_quality
from vae_tf.analysis.sample_quality import (
    frechet_distance,
    frechet_distance_from_moments,
    moments,
    precision_recall,
)


def _diagonal_case(rng, size=6):
    mean_a, mean_b = rng.normal(size=size), rng.normal(size=size)
    var_a, var_b = rng.uniform(0.1, 3.0, size), rng.uniform(0.1, 3.0, size)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    return mean_a, var_a, mean_b, var_b, expected


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mean_a, var_a, mean_b, var_b, expected = _diagonal_case(np.random.default_rng(1))
    assert frechet_distance_from_moments(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(expected)


def test_frechet_distance_of_commuting_covariances_is_the_closed_form():
    # Q diag(a) Q^T and Q diag(b) Q^T commute; a rotation leaves the distance unchanged.
    rng = np.random.default_rng(2)
    mean_a, var_a, mean_b, var_b, expected = _diagonal_case(rng)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    cov_a, cov_b = rotation @ np.diag(var_a) @ rotation.T, rotation @ np.diag(var_b) @ rotation.T
    distance = frechet_distance_from_moments(rotation @ mean_a, cov_a, rotation @ mean_b, cov_b)
    assert distance == pytest.approx(expected)


def test_frechet_distance_of_any_covariances_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 3))
    cov_a, cov_b = a @ a.T, b @ b.T  # cov_b singular: rank 3
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    cross = np.real(linalg.sqrtm(cov_a @ cov_b)).trace()
    expected = np.sum((mean_a - mean_b) ** 2) + cov_a.trace() + cov_b.trace() - 2 * cross
    distance = frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b)
    assert distance == pytest.approx(expected, rel=1e-6)
    assert frechet_distance_from_moments(mean_b, cov_b, mean_a, cov_a) == pytest.approx(distance, rel=1e-6)


def test_frechet_distance_of_feature_sets_uses_their_moments():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(200, 4)) * 2 + 1
    assert frechet_distance(a, b) == pytest.approx(frechet_distance_from_moments(*moments(a), *moments(b)))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(4 + 4 * (2 - 1) ** 2, rel=0.2)  # the population value


@pytest.mark.parametrize("a, b, message", [
    (np.zeros((5, 2)), np.zeros((5, 3)), "differ in width"),
    (np.zeros(5), np.zeros((5, 1)), r"\(N, D\)"),
    (np.zeros((1, 2)), np.zeros((5, 2)), "at least 2"),
    (np.full((5, 2), np.nan), np.zeros((5, 2)), "NaN"),
])
def test_frechet_distance_refuses_bad_features(a, b, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(a, b)


def test_identical_sets_have_precision_and_recall_one():
    features = np.random.default_rng(5).normal(size=(400, 8))
    assert precision_recall(features, features) == (1.0, 1.0)


def test_a_collapsed_sampler_has_low_recall_and_far_noise_low_precision():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(500, 8))
    collapsed = np.repeat(real[:1], 500, axis=0)  # one real point, over and over
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.01
    far = rng.normal(size=(500, 8)) + 20
    precision, recall = precision_recall(real, far)
    assert precision == 0.0 and recall == 0.0
    mixed = np.concatenate([real[:250], far[:250]])  # half realistic, half noise
    precision, _ = precision_recall(real, mixed)
    assert precision == pytest.approx(0.5, abs=0.02)


def test_precision_and_recall_do_not_depend_on_the_block_size(monkeypatch):
    rng = np.random.default_rng(7)
    real, generated = rng.normal(size=(300, 5)), rng.normal(size=(250, 5)) * 1.5
    whole = precision_recall(real, generated)
    rows = []
    monkeypatch.setattr(sample_quality, "BLOCK_ENTRIES", 1000)  # blocks of 3 or 4 rows
    assert precision_recall(real, generated, progress=rows.append) == whole
    assert sum(rows) == 300 + 2 * 250 and max(rows) <= 4
    assert 0 < whole[0] < 1 and 0 < whole[1] < 1


def test_precision_recall_refuses_bad_input():
    features = np.zeros((10, 2))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        precision_recall(features, features, k=0)
    with pytest.raises(ValueError, match="at least 4"):
        precision_recall(features, features[:3])
