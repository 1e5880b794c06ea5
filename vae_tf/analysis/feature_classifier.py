"""A small image classifier whose penultimate layer is the feature space of sample quality.

Inception features (FID) are trained on ImageNet photographs and say little about 28x28
grey clothes or digits, and downloading them is out of the question here. vae_tf instead
trains its own classifier on the data set the models learn: two strided convolutions, a
dense `features` layer, a softmax over the classes. Its architecture, initial weights and
data order are fixed by a `ClassifierSpec` and its seed, so the features mean the same
thing for every run on one data set (`vae_tf.runs.classifier_cache` trains it once and
keeps it). Distances in these features compare vae_tf models with each other, not with
the FIDs of papers.

Example:

>>> spec = ClassifierSpec()
>>> classifier, accuracy = train_classifier(spec, (x_train, y_train), (x_test, y_test), 10)
>>> features = classifier_features(classifier, x_test)  # (N, spec.feature_units)
"""

import dataclasses
import hashlib

import keras
import numpy as np
import tensorflow as tf

FEATURE_LAYER = "features"  # the penultimate layer's name: the feature space
PREDICT_BATCH = 500  # images per forward pass when computing features


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """The classifier's architecture and training, all part of its identity (and cache key).

    Args:
        filters: tuple of int. Channels of the strided 3x3 convolutions. Defaults to (32, 64).
        feature_units: int. Width of the `features` layer. Defaults to 128.
        epochs: int. Training passes over the training split. Defaults to 5.
        batch_size: int. Defaults to 128.
        learning_rate: float. Adam's. Defaults to 1e-3.
        seed: int. Seeds the initial weights and the shuffle. Defaults to 0.

    Example:

    >>> ClassifierSpec(filters=(8,), feature_units=16, epochs=1)  # tiny, for tests
    """

    filters: tuple = (32, 64)
    feature_units: int = 128
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        positive = {"feature_units": self.feature_units, "epochs": self.epochs, "batch_size": self.batch_size}
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.filters or not all(isinstance(f, int) and f >= 1 for f in self.filters):
            raise ValueError(f"filters must be a non-empty tuple of integers >= 1, got {self.filters!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    def as_dict(self):
        """The spec as JSON-ready values (filters as a list)."""
        return {**dataclasses.asdict(self), "filters": list(self.filters)}


def _initializer(spec, layer):
    """A seeded initializer, different for each layer, the same in every process."""
    return keras.initializers.GlorotUniform(seed=spec.seed * 1000 + layer)


def build_classifier(image_shape, num_classes, spec):
    """The classifier, untrained: its initial weights depend on `spec.seed` alone.

    Args:
        image_shape: (H, W, C). num_classes: int >= 2. spec: `ClassifierSpec`.

    Returns:
        A functional `keras.Model` from images in [0, 1] to class probabilities, with a
        `FEATURE_LAYER` dense layer before the softmax.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    inputs = keras.Input(image_shape, name="images")
    x = inputs
    for index, filters in enumerate(spec.filters):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=_initializer(spec, index), name=f"conv_{index}")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(spec.feature_units, activation="relu",
                           kernel_initializer=_initializer(spec, 100), name=FEATURE_LAYER)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 kernel_initializer=_initializer(spec, 101), name="classes")(x)
    return keras.Model(inputs, outputs, name="feature_classifier")


def train_classifier(spec, train, test, num_classes, verbose=False):
    """Trains the classifier of `spec` and measures its test accuracy.

    Args:
        spec: `ClassifierSpec`.
        train: (images (N, H, W, C) floats in [0, 1], labels (N,) int class ids).
        test: the same for the test split.
        num_classes: int >= 2. Labels lie in [0, num_classes).
        verbose: bool. Keras' progress bar for each epoch. Defaults to False.

    Returns:
        (model, test accuracy as a float in [0, 1]).
    """
    images, labels = train
    model = build_classifier(tuple(images.shape[1:]), num_classes, spec)
    model.compile(optimizer=keras.optimizers.Adam(spec.learning_rate),
                  loss="sparse_categorical_crossentropy")
    batches = (tf.data.Dataset.from_tensor_slices((images, labels))
               .shuffle(len(images), seed=spec.seed, reshuffle_each_iteration=True)
               .batch(spec.batch_size))
    model.fit(batches, epochs=spec.epochs, shuffle=False, verbose=1 if verbose else 0)  # shuffled above
    return model, accuracy(model, *test)


def accuracy(model, images, labels):
    """The fraction of `images` whose most probable class is their label."""
    predicted = np.argmax(model.predict(images, batch_size=PREDICT_BATCH, verbose=0), axis=1)
    return float(np.mean(predicted == np.asarray(labels).reshape(-1)))


def classifier_features(model, images):
    """The `FEATURE_LAYER` activations of `images`, float64 (N, feature_units).

    Args:
        model: a classifier from `build_classifier` (or loaded from its `.keras` file).
        images: array (N, H, W, C) of floats in [0, 1].
    """
    features = keras.Model(model.inputs, model.get_layer(FEATURE_LAYER).output)
    return np.asarray(features.predict(np.asarray(images, "float32"), batch_size=PREDICT_BATCH,
                                       verbose=0), "float64")


def arrays_sha256(*arrays):
    """The sha256 hex digest of arrays' shapes, dtypes and bytes, in order: the identity of
    a model's weights or of a data set's examples."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def weights_sha256(model):
    """The sha256 of a model's weights (`arrays_sha256`): equal digests mean bit-identical weights
    (the sample-quality reports and the training log give it)."""
    return arrays_sha256(*model.get_weights())
