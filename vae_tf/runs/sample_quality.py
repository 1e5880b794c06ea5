"""Sample quality of a run: the Fréchet distance, precision and recall of its samples
against its data set's test images, in the features of vae_tf's own classifier.

The samples come from what `vae-tf sample` draws from (`vae_tf.runs.sampling.sample_run`):
the prior (a VAE's, a VampPrior, a VQ-VAE's PixelCNN) or the run's fitted mixture
(`vae-tf fit-sampler`). They are the decoder's means, as `sample` gives them (a
Bernoulli decoder's pixel probabilities), clipped to [0, 1]: a Bernoulli draw of each
pixel would add salt-and-pepper noise that no test image has, and measure that noise
rather than the model. The classifier and the test images are the data set's as stored
(grey levels, no `binarize`, the whole training split), the same for every run on that
data set, so runs compare with each other; results go to RUN_DIR/sample_quality.json,
one entry per sampler.
"""

import json

import keras
import numpy as np

from vae_tf.analysis.feature_classifier import classifier_features
from vae_tf.analysis.sample_quality import NEAREST_K, frechet_distance, precision_recall
from vae_tf.runs.classifier_cache import cached_classifier
from vae_tf.runs.runlock import run_lock
from vae_tf.runs.sampling import check_prior_trained, latent_sampler, sample_run
from vae_tf.runs.sources import open_run
from vae_tf.runtime.files import write_json

QUALITY_FILE = "sample_quality.json"  # in the run directory: {sampler: result}
NUM_SAMPLES = 10_000  # generated images unless the caller says; real ones: as many, at most the test split
SAMPLE_BATCH = 500  # images drawn per call: bounds a conv decoder's memory


def _progress_bar(total, unit, verbose):
    """`advance(count)` moving a keras Progbar of `total` (nothing when not verbose)."""
    if not verbose:
        return lambda count: None
    bar = keras.utils.Progbar(total, unit_name=unit)
    return lambda count: bar.add(count)


def _draw(finished, num_samples, sampler, seed, verbose):
    """`num_samples` images from the run, in batches, as float32 clipped to [0, 1]."""
    advance = _progress_bar(num_samples, "sample", verbose)
    batches = []
    for index, start in enumerate(range(0, num_samples, SAMPLE_BATCH)):
        count = min(SAMPLE_BATCH, num_samples - start)
        # A seed per batch, derived from (seed, index): batches differ, reruns repeat.
        batch_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)
        images = sample_run(finished, count, seed=batch_seed, sampler=sampler, verbose=False)
        batches.append(np.clip(np.asarray(images, "float32"), 0.0, 1.0))
        advance(count)
    return np.concatenate(batches)


def _arrays(split):
    """(images, labels) of a tf.data split, as numpy arrays, in the split's order."""
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in split))
    return np.concatenate(images), np.concatenate(labels).astype("int32").reshape(-1)


def labelled_images(data_config):
    """The data set of a `vae_tf.config.DataConfig` (a run's `config.data`) as sample
    quality uses it: the training and test splits as stored (grey levels, no validation
    split carved out, no `limit`), with class labels.

    Args:
        data_config: `vae_tf.config.DataConfig`. Its dataset, data_dir, image_size and
            color_mode are used.

    Returns:
        (train (images, labels), test (images, labels), num_classes, source name).

    Example:

    >>> train, test, num_classes, source = labelled_images(DataConfig())  # Fashion-MNIST
    """
    from vae_tf.data import load_data

    data = load_data(data_config.dataset, data_config.data_dir, batch_size=SAMPLE_BATCH,
                     validation_fraction=0.0, image_size=data_config.image_size,
                     color_mode=data_config.color_mode)
    if data.num_classes is None:
        raise ValueError(f"sample quality needs class labels to train its feature classifier; "
                         f"{data.source} has none")
    # epoch(0): the training split in an order fixed by the seed, so its hash is stable.
    return _arrays(data.epoch(0)), _arrays(data.test), data.num_classes, data.source


def sampler_name(run, sampler=None):
    """What `sample_run` draws from for `sampler`, "prior" or "gmm", after checking that
    the run can sample at all (one-line errors otherwise)."""
    finished = open_run(run)
    model = finished.model
    if model.input_name != "images":
        raise ValueError(f"{finished.path} models a table's records; sample quality is measured on images")
    check_prior_trained(model)
    return "prior" if latent_sampler(finished, sampler) is None else "gmm"


def sample_quality(run, num_samples=NUM_SAMPLES, sampler=None, classifier_cache=None, seed=0,
                   spec=None, verbose=True):
    """Fréchet distance, precision and recall of a run's samples against its test images.

    Draws `num_samples` images (decoder means) from the run, compares them with as many
    test images (all of them if fewer, else a seeded random subset) in the features of
    the data set's classifier (`vae_tf.runs.classifier_cache`, trained on first use), and
    stores the result in RUN_DIR/sample_quality.json under the sampler's name.

    Args:
        run: `Run` or run directory of a model that can sample.
        num_samples: int > `NEAREST_K`. Images to draw. Defaults to `NUM_SAMPLES`.
        sampler: str or None. "prior", "gmm" or None, as for `vae-tf sample`.
        classifier_cache: str, Path or None. The classifier cache directory; None: the
            default (`vae_tf.runs.classifier_cache.default_cache_dir`).
        seed: int. Seeds the samples and the choice of test images. Defaults to 0.
        spec: `vae_tf.analysis.feature_classifier.ClassifierSpec` or None (the default).
        verbose: bool. Progress bars. Defaults to True.

    Returns:
        (result dict, path of sample_quality.json). The result holds `frechet_distance`,
        `precision`, `recall`, the counts, the sampler and the classifier's `test_accuracy`,
        `weights_sha256` and file.

    Example:

    >>> result, path = sample_quality("runs/vae", num_samples=2000, classifier_cache="classifiers")
    >>> result["frechet_distance"], result["precision"], result["recall"]
    """
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= NEAREST_K:
        raise ValueError(f"--samples must be an integer > {NEAREST_K} (the k of precision and recall), "
                         f"got {num_samples}")
    finished = open_run(run)
    name = sampler_name(finished, sampler)  # first: a run that cannot sample costs nothing
    # Then the data: a data set without labels is refused before any image is drawn.
    train, test, num_classes, source = labelled_images(finished.config.data)
    generated = _draw(finished, num_samples, sampler, seed, verbose)
    classifier, record, classifier_path, trained = cached_classifier(
        train, test, num_classes, source, spec, classifier_cache, verbose)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(test[0]))[:num_samples])
    real_features = classifier_features(classifier, test[0][chosen])
    generated_features = classifier_features(classifier, generated)
    advance = _progress_bar(len(chosen) + 2 * num_samples, "row", verbose)
    precision, recall = precision_recall(real_features, generated_features, progress=advance)
    result = {
        "sampler": name, "samples": num_samples, "real_examples": len(chosen), "seed": seed,
        "images": "decoder means, clipped to [0, 1]", "source": source,
        "frechet_distance": frechet_distance(real_features, generated_features),
        "precision": precision, "recall": recall, "k": NEAREST_K,
        "classifier": {"file": str(classifier_path), "test_accuracy": record["test_accuracy"],
                       "weights_sha256": record["weights_sha256"], "data_sha256": record["data"]["sha256"],
                       "architecture": record["architecture"], "trained_now": trained},
    }
    return result, _store(finished, name, result)


def _store(finished, name, result):
    """Writes `result` into the run's QUALITY_FILE under `name`, keeping other samplers'."""
    path = finished.path / QUALITY_FILE
    with run_lock(finished.path):
        try:
            stored = json.loads(path.read_text()) if path.is_file() else {}
        except json.JSONDecodeError:  # our own file, damaged: this result replaces it
            stored = {}
        stored = stored if isinstance(stored, dict) else {}
        return write_json(path, {**stored, name: result})
