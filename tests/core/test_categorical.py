"""The Gumbel-softmax relaxation's identities: one-hot as tau -> 0, Gumbel-max draws with the
categorical's frequencies, the exact KL to a uniform categorical, the temperature schedule."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_tf.core.categorical import (GumbelSoftmax, UniformCategorical, annealed_temperature, gumbel_noise,
                                     log_probabilities, one_hot_draws, relaxed_draws, uniform_kl)

PI = np.array([0.5, 0.3, 0.15, 0.05], "float32")


def test_the_relaxed_sample_tends_to_one_hot_as_the_temperature_falls():
    log_pi = np.log(np.tile(PI, (2000, 1)))
    noise = gumbel_noise(log_pi.shape, seed=0)
    exact = np.asarray(one_hot_draws(log_pi, seed=0))  # the same noise: argmax(log pi + g)
    largest = []
    for tau in (10.0, 1.0, 0.1, 0.01, 0.001):
        y = np.asarray(relaxed_draws(log_pi, noise, tau))
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(y.argmax(axis=-1), exact.argmax(axis=-1))
        largest.append(y.max(axis=-1).mean())
    assert largest == sorted(largest) and largest[0] < 0.4
    # 1 - E[max y] shrinks with tau (about as tau: measured 0.047, 0.006, 0.001 at 0.1, 0.01, 0.001).
    assert 1 - largest[-1] < 2e-3 and (1 - largest[-1]) < (1 - largest[-2]) / 3


def test_argmax_of_gumbel_perturbed_logits_is_an_exact_categorical_sample():
    n = 40000
    draws = np.asarray(one_hot_draws(np.log(PI), seed=keras.random.SeedGenerator(1), num_samples=n))
    assert draws.shape == (n, 4) and np.all(draws.sum(axis=-1) == 1)
    # Each frequency within 4 standard errors of pi.
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - PI), 4 * np.sqrt(PI * (1 - PI) / n))
    # At any temperature the relaxed sample's largest entry is the Gumbel-max category.
    relaxed = np.asarray(relaxed_draws(np.log(PI), gumbel_noise((n, 4), seed=2), 1.0))
    frequencies = np.bincount(relaxed.argmax(axis=-1), minlength=4) / n
    np.testing.assert_array_less(np.abs(frequencies - PI), 4 * np.sqrt(PI * (1 - PI) / n))


def test_fixed_seeds_repeat_the_draws():
    log_pi = np.log(np.tile(PI, (5, 1)))
    for seed in (3, (3, 4), tf.constant([3, 4])):
        np.testing.assert_array_equal(one_hot_draws(log_pi, seed), one_hot_draws(log_pi, seed))
    assert np.isfinite(np.asarray(gumbel_noise((100000,), seed=5))).all()


def test_kl_to_a_uniform_categorical_is_exact():
    k = 5
    assert float(uniform_kl(np.log(np.full((k,), 1 / k, "float32")))) == pytest.approx(0.0, abs=1e-6)
    one_hot_logits = np.array([[60.0, 0, 0, 0, 0]], "float32")  # q = e_1 to float32 precision
    log_q = log_probabilities(one_hot_logits, k)
    assert float(uniform_kl(log_q)[0, 0]) == pytest.approx(math.log(k), abs=1e-5)
    logits = np.random.default_rng(0).normal(size=(3, 2 * k)).astype("float32")
    q = np.exp(logits.reshape(3, 2, k).astype("float64"))
    q /= q.sum(axis=-1, keepdims=True)
    by_hand = (q * np.log(q * k)).sum(axis=-1)  # sum_k q_k log(q_k / (1/K))
    np.testing.assert_allclose(uniform_kl(log_probabilities(logits, k)), by_hand, rtol=1e-5, atol=1e-6)


def test_the_temperature_schedule_is_jang_et_als():
    steps = np.array([0, 499, 500, 1500, 10 ** 6])
    got = np.asarray(annealed_temperature(steps, 1.0, 0.5, 1e-4, 500))
    expected = [1.0, 1.0, math.exp(-0.05), math.exp(-0.15), 0.5]  # max(0.5, exp(-r t)), t by 500s
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert float(annealed_temperature(10 ** 6, 2.0, 0.3, 0.0, 1)) == 2.0  # r = 0: constant


def test_the_layer_adds_the_weighted_kl_and_draws_relaxed_or_one_hot_codes():
    layer = GumbelSoftmax(3, beta=0.5, seed=0)
    logits = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    relaxed = np.asarray(layer(logits, training=True)).reshape(4, 2, 3)
    kl = np.asarray(uniform_kl(log_probabilities(logits, 3)))
    assert float(layer.losses[0]) == pytest.approx(0.5 * kl.mean(axis=0).sum(), rel=1e-5)
    np.testing.assert_allclose(relaxed.sum(axis=-1), 1.0, rtol=1e-5)
    assert not np.all(np.isin(relaxed, (0.0, 1.0)))  # tau = 1: not one-hot
    hard = np.asarray(layer(logits, training=False)).reshape(4, 2, 3)
    assert np.all(np.isin(hard, (0.0, 1.0))) and np.all(hard.sum(axis=-1) == 1)


def test_straight_through_is_one_hot_forward_with_the_relaxed_gradient():
    logits = tf.constant(np.random.default_rng(2).normal(size=(8, 4)).astype("float32"))
    noise = gumbel_noise((8, 1, 4), seed=0)
    weights = tf.constant(np.arange(4, dtype="float32"))
    gradients = []
    for straight_through in (False, True):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            y = relaxed_draws(log_probabilities(logits, 4), noise, 0.5, straight_through)
            loss = tf.reduce_sum(y * weights)
        gradients.append(tape.gradient(loss, logits).numpy())
        if straight_through:
            assert np.all(np.isin(y.numpy(), (0.0, 1.0)))
    np.testing.assert_allclose(gradients[1], gradients[0], rtol=1e-5)
    assert np.abs(gradients[0]).max() > 0


def test_anneal_sets_the_temperature_variable():
    layer = GumbelSoftmax(2, temperature=2.0, temperature_min=0.5, anneal_rate=0.01, anneal_every=10)
    assert float(layer.temperature) == 2.0
    layer.anneal(tf.constant(25, "int64"))
    assert float(layer.temperature) == pytest.approx(2.0 * math.exp(-0.2))


@pytest.mark.parametrize("kwargs, message", [
    ({"categories": 1}, "categories must be an integer >= 2, got 1"),
    ({"temperature": 0.0}, "temperature must be > 0, got 0.0"),
    ({"temperature_min": 2.0}, "temperature_min must be > 0 and <= temperature"),
    ({"anneal_rate": -1.0}, "anneal_rate must be >= 0"),
    ({"anneal_every": 0}, "anneal_every must be an integer >= 1"),
    ({"beta": -1.0}, "beta must be >= 0"),
])
def test_the_layer_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GumbelSoftmax(**kwargs)


def test_the_logits_must_split_into_variables():
    with pytest.raises(ValueError, match=r"multiple of categories \(3\), got 7"):
        GumbelSoftmax(3)(keras.Input((7,)))


def test_the_uniform_prior_samples_one_hot_codes_uniformly():
    prior = UniformCategorical(2, 4)
    draws = np.asarray(prior.sample(20000, seed=0)).reshape(-1, 2, 4)
    assert np.all(draws.sum(axis=-1) == 1)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - 0.25), 4 * math.sqrt(0.25 * 0.75 / 20000))
    np.testing.assert_allclose(prior.log_prob(draws.reshape(-1, 8)[:3]), [-2 * math.log(4)] * 3, rtol=1e-6)
    np.testing.assert_array_equal(prior.sample(3, seed=tf.constant([1, 2])), prior.sample(3, seed=tf.constant([1, 2])))


def test_free_bits_floor_each_variables_kl():
    layer = GumbelSoftmax(3, free_bits=0.2)
    logits = np.zeros((4, 6), "float32")
    logits[:, :3] = [[40.0, 0.0, 0.0]]  # variable 0 one-hot (KL log 3), variable 1 uniform (KL 0)
    layer(logits)
    assert float(layer.losses[0]) == pytest.approx(math.log(3) + 0.2, rel=1e-5)
