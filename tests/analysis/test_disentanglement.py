import json
import math

import numpy as np
import pytest

from vae_tf.analysis import disentanglement as dis

from helpers import ToySampler

SIZES = ToySampler.SIZES


def _factors(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(size, size=n) for size in SIZES], axis=1)


def _perfect_codes(factors):
    return factors.astype("float64")


def _noise_codes(n, dims=3, seed=1):
    return np.random.default_rng(seed).normal(size=(n, dims))




def _identity_encoder(images):
    return images.reshape(len(images), -1)


def test_mutual_information_of_a_hand_computed_table():
    # Joint of (a, b): p(0,0) = 1/4, p(0,1) = 1/4, p(1,1) = 1/2; p(a) = (1/2, 1/2), p(b) = (1/4, 3/4).
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    by_hand = 0.25 * math.log(0.25 / (0.5 * 0.25)) + 0.25 * math.log(0.25 / (0.5 * 0.75)) + 0.5 * math.log(
        0.5 / (0.5 * 0.75)
    )
    assert by_hand == pytest.approx(1.5 * math.log(2) - 0.75 * math.log(3))
    assert dis.mutual_information(a, b) == pytest.approx(by_hand, abs=1e-12)
    assert dis.mutual_information(a, a) == pytest.approx(math.log(2))  # I(a; a) = H(a)
    assert dis.mutual_information(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])) == pytest.approx(0.0)


def test_discretize_puts_distinct_integer_values_in_distinct_bins():
    codes = np.arange(10.0)[:, None].repeat(2, axis=1)
    binned = dis.discretize(codes, num_bins=20)
    assert binned.min() == 0 and binned.max() == 19
    assert len(np.unique(binned[:, 0])) == 10


def test_twenty_bins_cap_mig_on_dsprites_many_valued_factors():
    # Full grid of dSprites' orientation (40 values) and a position (32): 20 equal-width bins
    # hold 2 orientations each (I = ln 20) and 12 bins with 2 positions + 8 with 1
    # (I = 4.25 ln 2 = 0.85 H); the other dimension carries exactly no information.
    grid = np.stack(np.meshgrid(np.arange(40), np.arange(32), indexing="ij"), -1).reshape(-1, 2)
    by_hand = (math.log(20) / math.log(40) + 0.85) / 2
    assert dis.mig(grid.astype("float64"), grid) == pytest.approx(by_hand, abs=1e-9)
    assert dis.mig(grid.astype("float64"), grid, num_bins=40) == pytest.approx(1.0, abs=1e-9)
    dsprites_ceiling = (2 + math.log(20) / math.log(40) + 2 * 0.85) / 5  # shape, scale: 1 each
    assert dsprites_ceiling == pytest.approx(0.902, abs=5e-4)


def test_codes_equal_to_the_factors_score_one():
    factors = _factors(10_000)
    codes = _perfect_codes(factors)
    assert dis.mig(codes, factors) == pytest.approx(1.0, abs=0.02)
    scores = dis.dci(codes[:1500], factors[:1500])
    assert scores["disentanglement"] == pytest.approx(1.0, abs=0.02)
    assert scores["completeness"] == pytest.approx(1.0, abs=0.02)
    assert scores["informativeness"] == pytest.approx(1.0, abs=1e-3)


def test_codes_independent_of_the_factors_score_zero():
    factors = _factors(10_000)
    codes = _noise_codes(10_000)
    assert dis.mig(codes, factors) == pytest.approx(0.0, abs=0.02)
    assert dis.sap(codes, factors) == pytest.approx(0.0, abs=0.03)
    assert dis.sap(codes, factors, continuous=True) == pytest.approx(0.0, abs=0.01)
    assert dis.dci(codes[:1500], factors[:1500])["disentanglement"] < 0.1


def test_sap_prefers_the_matching_code():
    factors = _factors(6_000)
    assert dis.sap(_perfect_codes(factors), factors) > 0.2
    assert dis.sap(_perfect_codes(factors), factors, continuous=True) == pytest.approx(1.0, abs=0.05)


def test_permuting_code_dimensions_changes_no_score():
    factors = _factors(1_500)
    rng = np.random.default_rng(5)
    codes = factors + rng.normal(0, 0.7, factors.shape)
    codes = np.concatenate([codes, rng.normal(size=(1_500, 2))], axis=1)
    order = np.array([3, 0, 4, 2, 1])
    assert dis.mig(codes[:, order], factors) == pytest.approx(dis.mig(codes, factors), abs=1e-12)
    assert dis.sap(codes[:, order], factors) == pytest.approx(dis.sap(codes, factors), abs=1e-12)
    before, after = dis.dci(codes, factors), dis.dci(codes[:, order], factors)
    for key in ("disentanglement", "completeness", "informativeness"):
        assert after[key] == pytest.approx(before[key], abs=1e-12)
    assert np.allclose(np.asarray(after["importance"]), np.asarray(before["importance"])[order], atol=1e-12)
    kwargs = dict(num_train=200, num_eval=100, batch_size=16, num_variance_estimate=500)
    plain = dis.factor_vae_score(_identity_encoder, ToySampler(), **kwargs)
    permuted = dis.factor_vae_score(lambda x: _identity_encoder(x)[:, [2, 0, 1]], ToySampler(), **kwargs)
    assert plain == permuted


def test_factor_vae_score_is_one_for_the_factors_and_chance_for_noise():
    kwargs = dict(num_train=300, num_eval=200, batch_size=32, num_variance_estimate=1_000)
    assert dis.factor_vae_score(_identity_encoder, ToySampler(), **kwargs)["eval_accuracy"] == 1.0
    noise = lambda x: np.random.default_rng(int(x.sum())).normal(size=(len(x), 3))  # noqa: E731
    score = dis.factor_vae_score(noise, ToySampler(), **kwargs)["eval_accuracy"]
    assert score < 0.55  # chance is 1/3 for three factors


def test_factor_vae_score_takes_a_model_and_ignores_collapsed_dimensions():
    class Model:  # what the metrics ask of a model: its latent means
        is_conditional = False

        def mean_code(self, images, labels=None):
            return _identity_encoder(np.asarray(images))

    class Collapsed(Model):
        def mean_code(self, images, labels=None):
            return np.zeros((len(images), 3))

    kwargs = dict(num_train=100, num_eval=50, batch_size=16, num_variance_estimate=200)
    assert dis.factor_vae_score(Model(), ToySampler(), **kwargs)["eval_accuracy"] == 1.0
    assert dis.factor_vae_score(Collapsed(), ToySampler(), **kwargs) == {
        "eval_accuracy": 0.0, "train_accuracy": 0.0, "active_dims": 0
    }


@pytest.mark.parametrize(
    "codes, factors, message",
    [
        (np.zeros(10), np.zeros((10, 2), "int64"), "codes must be shaped"),
        (np.zeros((10, 2)), np.zeros(10, "int64"), "factors must be shaped"),
        (np.zeros((10, 2)), np.zeros((9, 2), "int64"), "10 examples but factors has 9"),
        (np.zeros((10, 2)), np.zeros((10, 2)), "integer"),
        (np.full((10, 2), np.nan), np.zeros((10, 2), "int64"), "NaN"),
        (np.zeros((10, 1)), np.zeros((10, 2), "int64"), "at least 2 code dimensions"),
    ],
)
def test_bad_arrays_are_refused_with_a_clear_message(codes, factors, message):
    for metric in (dis.mig, dis.sap, dis.dci):
        with pytest.raises(ValueError, match=message):
            metric(codes, factors)


def test_constant_factor_is_refused_by_mig():
    factors = _factors(100)
    factors[:, 1] = 0
    with pytest.raises(ValueError, match="factor 1 takes a single value"):
        dis.mig(_noise_codes(100), factors)


def test_all_scores_on_the_dsprites_sampler_is_json_ready():
    from vae_tf.data.dsprites import DSprites

    def centroid_and_area(images):
        on = images[..., 0]
        area = on.sum(axis=(1, 2))
        rows, cols = np.indices(on.shape[1:])
        return np.stack([(on * cols).sum(axis=(1, 2)) / area, (on * rows).sum(axis=(1, 2)) / area, area], axis=1)

    small = {"mig": 2_000, "sap": 600, "dci": 600, "factor_vae_variance": 500, "factor_vae_train": 100,
             "factor_vae_eval": 50, "beta_vae_train": 100, "beta_vae_eval": 50, "modularity": 1_000,
             "explicitness": 600, "irs": 1_000}
    scores = dis.all_scores(centroid_and_area, DSprites(), seed=0, samples=small)
    assert set(scores) == {*dis.METRICS, "summary", "seed", "samples"}
    assert list(scores["summary"]) == list(dis.METRICS) and all(0 <= v <= 1 for v in scores["summary"].values())
    assert json.loads(json.dumps(scores)) == scores
    # The centroid follows pos_x and pos_y and the area the scale: three of the five factors
    # have a dimension of their own, so the majority vote is right on about 3/5 of the votes.
    assert scores["mig"] > 0.3 and 0.5 < scores["factor_vae"]["eval_accuracy"] <= 0.7
    with pytest.raises(ValueError, match="unknown samples keys"):
        dis.all_scores(centroid_and_area, DSprites(), samples={"migg": 10})
