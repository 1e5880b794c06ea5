"""The sanity checks of vae_tf's sample-quality measures at full size: the Fréchet
distance, precision and recall of image sets whose ranking is known, in the features of
the data set's classifier (trained and cached as `vae-tf sample-quality` does).

Usage: python scripts/sample_quality_sanity.py CACHE_DIR [N]

Compares N test images (default 10,000) with: N training images (close), the same test
images with added Gaussian noise or box blur (farther as either grows), uniform noise,
and one test image repeated N times (a sampler of one mode). Prints a Markdown table.
"""

import sys
import time

import numpy as np

from vae_tf.analysis.feature_classifier import classifier_features
from vae_tf.analysis.sample_quality import frechet_distance, precision_recall
from vae_tf.config import DataConfig
from vae_tf.runs.classifier_cache import cached_classifier
from vae_tf.runs.sample_quality import labelled_images


def box_blur(images, passes):
    """`passes` 3x3 box blurs, edges repeated."""
    height, width = images.shape[1:3]
    for _ in range(passes):
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        images = sum(padded[:, i:i + height, j:j + width] for i in range(3) for j in range(3)) / 9
    return images.astype("float32")


def noisy(images, sigma, rng):
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 1).astype("float32")


def candidates(train, test, rng):
    """(name, images) of the sets compared with the test images."""
    yield "training images", train
    for sigma in (0.05, 0.1, 0.2, 0.4):
        yield f"test + Gaussian noise σ = {sigma}", noisy(test, sigma, rng)
    for passes in (1, 2, 4):
        yield f"test, box-blurred ×{passes}", box_blur(test, passes)
    yield "uniform noise", rng.uniform(size=test.shape).astype("float32")
    yield "one test image ×N (one mode)", np.repeat(test[:1], len(test), axis=0)


def main(cache_dir, count):
    start = time.time()
    train, test, num_classes, source = labelled_images(DataConfig())
    classifier, record, path, _ = cached_classifier(train, test, num_classes, source, cache_dir=cache_dir,
                                                    verbose=True)
    print(f"classifier {path}: test accuracy {record['test_accuracy']:.4f}, "
          f"weights sha256 {record['weights_sha256']}")
    rng = np.random.default_rng(0)
    real_images = test[0][rng.permutation(len(test[0]))[:count]]
    real = classifier_features(classifier, real_images)
    train_images = train[0][rng.permutation(len(train[0]))[:count]]
    print(f"\n{count} test images against | Fréchet distance | precision | recall")
    print("--- | ---: | ---: | ---:")
    for name, images in candidates(train_images, real_images, rng):
        features = classifier_features(classifier, images)
        precision, recall = precision_recall(real, features)
        print(f"{name} | {frechet_distance(real, features):.2f} | {precision:.3f} | {recall:.3f}", flush=True)
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 10_000)
