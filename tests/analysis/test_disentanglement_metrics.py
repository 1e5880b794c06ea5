"""Known answers of the β-VAE metric, Modularity, Explicitness and IRS: the factors as codes
score the maximum, a rotation or noise lowers the score, a constant code scores the minimum,
and small cases computed by hand."""

import numpy as np
import pytest

from vae_tf.analysis import disentanglement as dis
from vae_tf.analysis.disentanglement.interventions import _difference_votes

from helpers import ToySampler

SIZES = ToySampler.SIZES




def _identity(images):
    return images.reshape(len(images), -1).astype("float64")


def _factors(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(size, size=n) for size in SIZES], axis=1)


def _rotated(codes, seed=3):
    """Standardized codes turned by a random orthogonal matrix: every dimension mixes all factors."""
    rotation = np.linalg.qr(np.random.default_rng(seed).normal(size=(codes.shape[1],) * 2))[0]
    return (codes - codes.mean(axis=0)) / codes.std(axis=0) @ rotation


def _noisy(codes, scale=1.0, seed=4):
    return codes + np.random.default_rng(seed).normal(0, scale, codes.shape)


def _grid_2x2(repeats=1):
    """Two binary factors on their full grid, and codes z0 = a, z1 = a + b."""
    factors = np.tile(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), (repeats, 1))
    return np.stack([factors[:, 0], factors[:, 0] + factors[:, 1]], axis=1).astype("float64"), factors


def test_modularity_of_a_hand_computed_case():
    # z0 = a informs about a alone: δ = 0, score 1. z1 = a + b informs ln 2 about each:
    # δ = (ln 2)² / ((ln 2)² (2 − 1)) = 1, score 0. Mean 1/2.
    codes, factors = _grid_2x2(repeats=25)
    assert dis.modularity(codes, factors) == pytest.approx(0.5, abs=1e-12)
    assert dis.modularity(codes[:, :1], factors) == pytest.approx(1.0, abs=1e-12)


def test_modularity_is_one_for_the_factors_lower_rotated_and_zero_when_constant():
    factors = _factors(10_000)
    codes = factors.astype("float64")
    assert dis.modularity(codes, factors) == pytest.approx(1.0, abs=2e-3)
    assert dis.modularity(_rotated(codes), factors) < 0.85
    # Noise informs a little about every factor, unequally: well above 0 (read it beside MIG).
    assert dis.modularity(np.random.default_rng(5).normal(size=(10_000, 3)), factors) > 0.5
    assert dis.modularity(np.zeros((10_000, 3)), factors) == 0.0
    # A collapsed dimension informs about nothing and scores 0: three of four dimensions score 1.
    with_collapsed = np.concatenate([codes, np.zeros((10_000, 1))], axis=1)
    assert dis.modularity(with_collapsed, factors) == pytest.approx(0.75, abs=2e-3)


def test_explicitness_is_one_for_the_factors_lower_with_noise_and_one_half_when_constant():
    factors = _factors(3_000)
    codes = factors.astype("float64")
    assert dis.explicitness(codes, factors)["explicitness"] == pytest.approx(1.0, abs=1e-3)
    noisy = dis.explicitness(_noisy(codes, 1.5), factors)["explicitness"]
    assert 0.6 < noisy < 0.9
    # A linear read-out does not care how the axes are turned: a rotation keeps the score.
    assert dis.explicitness(_rotated(codes), factors)["explicitness"] == pytest.approx(1.0, abs=1e-2)
    # A constant code gives every example the same probabilities: each AUC is exactly 1/2.
    constant = dis.explicitness(np.zeros((3_000, 3)), factors)
    assert constant == {"explicitness": 0.5, "explicitness_train": 0.5}
    noise = dis.explicitness(np.random.default_rng(5).normal(size=(3_000, 3)), factors)["explicitness"]
    assert noise == pytest.approx(0.5, abs=0.03)


def test_explicitness_of_a_hand_computed_case():
    # z0 = a separates a's two values and z1 = a + b orders b's within each a: a logistic
    # regression on both ranks every held-out example right, AUC 1 for both factors.
    codes, factors = _grid_2x2(repeats=30)
    assert dis.explicitness(codes, factors) == {"explicitness": 1.0, "explicitness_train": 1.0}


def test_irs_of_a_hand_computed_case():
    # z0 = a: constant once a is fixed, IRS row max 1, largest deviation 1/2. z1 = a + b: fixing
    # either factor leaves deviations of 1/2 against a largest deviation of 1, row max 1/2.
    # Weighted by the largest deviations: (1/2 * 1 + 1 * 1/2) / (1/2 + 1) = 2/3.
    codes, factors = _grid_2x2()
    for quantile in (0.99, 1.0):
        assert dis.irs(codes, factors, diff_quantile=quantile) == {"irs": pytest.approx(2 / 3, abs=1e-12),
                                                                   "active_dims": 2}


def test_irs_groups_a_factor_of_40_values_in_20_bins():
    # dSprites' orientation as its own code: each bin holds 2 neighbouring values, so fixing
    # the factor leaves deviations of 1/2 against a largest deviation of 19.5: 1 - 1/39.
    values = np.arange(40)
    assert dis.irs(values[:, None].astype("float64"), values[:, None])["irs"] == pytest.approx(38 / 39, abs=1e-12)
    assert dis.irs(values[:, None].astype("float64"), values[:, None], num_bins=40)["irs"] == 1.0


def test_irs_is_one_for_the_factors_lower_rotated_or_noisy_and_zero_when_constant():
    factors = _factors(10_000)
    codes = factors.astype("float64")
    assert dis.irs(codes, factors) == {"irs": 1.0, "active_dims": 3}
    # A constant dimension is dropped, as in disentanglement_lib.
    assert dis.irs(np.concatenate([codes, np.ones((10_000, 1))], axis=1), factors) == {"irs": 1.0, "active_dims": 3}
    assert dis.irs(_rotated(codes), factors)["irs"] < 0.7
    assert dis.irs(_noisy(codes), factors)["irs"] < 0.7
    assert dis.irs(np.zeros((10_000, 3)), factors) == {"irs": 0.0, "active_dims": 0}


def test_beta_vae_votes_hold_the_fixed_factor_at_zero_difference():
    votes, fixed = _difference_votes(_identity, ToySampler(), 300, 64, np.random.default_rng(0))
    assert votes.shape == (300, 3) and set(fixed) == {0, 1, 2}
    assert np.all(votes[np.arange(300), fixed] == 0)
    # A free factor of K uniform values differs by E|v1 - v2| = (K² - 1) / (3K) on average.
    for k, size in enumerate(SIZES):
        free = votes[fixed != k, k]
        assert free.mean() == pytest.approx((size**2 - 1) / (3 * size), rel=0.03)


def test_beta_vae_score_is_one_for_the_factors_lower_with_noise_and_chance_when_constant():
    kwargs = dict(num_train=300, num_eval=200, batch_size=16)
    assert dis.beta_vae_score(_identity, ToySampler(), **kwargs) == {"eval_accuracy": 1.0, "train_accuracy": 1.0}
    # A linear classifier of mean |z1 - z2| tells some rotations of the factors apart, not others.
    rotated = {}
    for seed in (0, 3):
        rotation = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))[0]
        rotated[seed] = dis.beta_vae_score(lambda x: _identity(x) / SIZES @ rotation, ToySampler(),
                                           num_train=200, num_eval=100, batch_size=64)["eval_accuracy"]
    assert rotated[0] == 1.0 and rotated[3] < 0.8
    noisy = dis.beta_vae_score(lambda x: _noisy(_identity(x), 3.0, seed=int(x.sum())), ToySampler(), **kwargs)
    assert 0.5 < noisy["eval_accuracy"] < 0.95
    constant = dis.beta_vae_score(lambda x: np.zeros((len(x), 3)), ToySampler(), **kwargs)
    assert constant["eval_accuracy"] < 0.45  # chance is 1/3 for three factors
    assert dis.beta_vae_score(_identity, ToySampler(), seed=1, **kwargs) == dis.beta_vae_score(
        _identity, ToySampler(), seed=1, **kwargs)


def test_permuting_code_dimensions_changes_no_score():
    factors = _factors(1_500)
    codes = np.concatenate([_noisy(factors.astype("float64"), 0.7), np.random.default_rng(6).normal(size=(1_500, 2))], 1)
    order = np.array([3, 0, 4, 2, 1])
    assert dis.modularity(codes[:, order], factors) == pytest.approx(dis.modularity(codes, factors), abs=1e-12)
    assert dis.irs(codes[:, order], factors)["irs"] == pytest.approx(dis.irs(codes, factors)["irs"], abs=1e-12)
    before, after = dis.explicitness(codes, factors), dis.explicitness(codes[:, order], factors)
    assert after["explicitness"] == pytest.approx(before["explicitness"], abs=1e-4)


def test_summary_takes_each_metrics_headline_in_metrics_order():
    scores = {"irs": {"irs": 0.4, "active_dims": 3}, "mig": 0.1, "dci": {"disentanglement": 0.2, "completeness": 0.9},
              "beta_vae": {"eval_accuracy": 0.7, "train_accuracy": 0.8}, "modularity": 0.9,
              "explicitness": {"explicitness": 0.6, "explicitness_train": 0.65}, "seed": 0}
    assert dis.summary(scores) == {"mig": 0.1, "dci": 0.2, "beta_vae": 0.7, "modularity": 0.9,
                                   "explicitness": 0.6, "irs": 0.4}
    assert list(dis.summary(scores)) == ["mig", "dci", "beta_vae", "modularity", "explicitness", "irs"]


@pytest.mark.parametrize("call, message", [
    (lambda: dis.modularity(np.zeros((10, 2)), np.zeros((10, 1), "int64")), "Modularity needs at least 2 factors"),
    (lambda: dis.modularity(np.zeros(10), np.zeros((10, 2), "int64")), "codes must be shaped"),
    (lambda: dis.explicitness(np.zeros((10, 2)), np.zeros((10, 2))), "factors must be integer"),
    (lambda: dis.explicitness(np.zeros((30, 2)), np.zeros((30, 1), "int64")), "factor 0 takes a single value"),
    (lambda: dis.irs(np.zeros((10, 2)), np.zeros((9, 2), "int64")), "10 examples but factors has 9"),
    (lambda: dis.irs(np.zeros((10, 2)), np.zeros((10, 2), "int64"), diff_quantile=0), "diff_quantile must be in"),
    (lambda: dis.beta_vae_score(_identity, ToySampler(), num_train=0), "num_train must be an integer >= 1, got 0"),
    (lambda: dis.beta_vae_score(_identity, ToySampler(), num_train=1, num_eval=1), "fixed a single factor"),
    (lambda: dis.all_scores(_identity, ToySampler(), metrics="mig"), "metrics must be a non-empty list"),
    (lambda: dis.all_scores(_identity, ToySampler(), metrics=["mig", "irss"]), "unknown metrics \\['irss'\\]"),
])
def test_bad_inputs_are_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()
