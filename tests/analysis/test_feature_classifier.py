"""The feature classifier on real Fashion-MNIST images, tiny, and the sanity checks of
sample quality in its features: the measures rank what they should."""

import numpy as np
import pytest

from vae_tf.analysis.feature_classifier import (
    ClassifierSpec,
    build_classifier,
    classifier_features,
    train_classifier,
    weights_sha256,
)
from vae_tf.analysis.sample_quality import frechet_distance, precision_recall

TINY = ClassifierSpec(filters=(8, 16), feature_units=32, epochs=2)


@pytest.fixture(scope="module")
def trained(real_images):
    """A tiny classifier trained on 3,000 test images; the other 2,000 held out (1,000 each
    for two halves)."""
    images, labels = real_images
    model, accuracy = train_classifier(TINY, (images[:3000], labels[:3000]),
                                       (images[3000:5000], labels[3000:5000]), 10)
    return model, accuracy, images[3000:5000]


def _noisy(images, sigma, seed=0):
    return np.clip(images + np.random.default_rng(seed).normal(0, sigma, images.shape), 0, 1).astype("float32")


def _blurred(images, passes):
    """`passes` 3x3 box blurs (edges repeated)."""
    for _ in range(passes):
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        images = sum(padded[:, i:i + 28, j:j + 28] for i in range(3) for j in range(3)) / 9
    return images.astype("float32")


def test_the_classifier_learns_and_its_initial_weights_depend_on_the_seed_alone(trained):
    _, accuracy, _ = trained
    assert accuracy > 0.6  # ten classes: chance is 0.1
    first, second = (weights_sha256(build_classifier((28, 28, 1), 10, TINY)) for _ in range(2))
    assert first == second
    assert weights_sha256(build_classifier((28, 28, 1), 10, ClassifierSpec(seed=1))) != \
        weights_sha256(build_classifier((28, 28, 1), 10, ClassifierSpec()))


def test_features_are_the_penultimate_layer(trained):
    model, _, held_out = trained
    features = classifier_features(model, held_out[:10])
    assert features.shape == (10, TINY.feature_units) and features.dtype == np.float64
    assert np.all(features >= 0)  # after the ReLU


def test_two_halves_of_one_set_are_close_and_noise_and_blur_move_away_monotonically(trained):
    model, _, held_out = trained
    half_a, half_b = held_out[:1000], held_out[1000:]
    real = classifier_features(model, half_a)
    between_halves = frechet_distance(real, classifier_features(model, half_b))
    noisy = [frechet_distance(real, classifier_features(model, _noisy(half_b, s))) for s in (0.1, 0.2, 0.4)]
    blurred = [frechet_distance(real, classifier_features(model, _blurred(half_b, p))) for p in (1, 2, 4)]
    assert between_halves < 0.2 * noisy[-1]
    assert between_halves < noisy[0] < noisy[1] < noisy[2], noisy
    assert between_halves < blurred[0] < blurred[1] < blurred[2], blurred


def test_precision_drops_for_noise_and_recall_for_a_sampler_of_one_mode(trained):
    model, _, held_out = trained
    real = classifier_features(model, held_out[:1000])
    other = classifier_features(model, held_out[1000:])
    precision, recall = precision_recall(real, other)
    assert precision > 0.6 and recall > 0.6
    noisy = [precision_recall(real, classifier_features(model, _noisy(held_out[1000:], s)))[0]
             for s in (0.2, 0.4)]
    assert precision > noisy[0] > noisy[1], noisy
    one_mode = np.repeat(held_out[1000:1001], 1000, axis=0)  # a collapsed sampler
    _, mode_recall = precision_recall(real, classifier_features(model, one_mode))
    assert mode_recall < 0.05
