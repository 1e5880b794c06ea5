"""TensorBoard Embedding Projector files for a latent space: the checkpointed tensor,
`metadata.tsv`, a sprite of the inputs' thumbnails and `projector_config.pbtxt`.

The files go into one directory that also holds an (empty) event file, so TensorBoard
lists the directory as a run: `tensorboard --logdir` pointed at it or at any parent
(one training run's logs, or a folder of many runs) shows its projector.
"""

import logging
import math
import pathlib

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from vae_tf.analysis.evaluation import latent_features

log = logging.getLogger(__name__)

# TensorBoard's projector refuses sprite images larger than this, in pixels per side.
SPRITE_LIMIT = 8192
PROJECTOR_EXAMPLES = 2000  # examples a run's projector shows by default
CHECKPOINT_NAME = "latent"
TENSOR_NAME = "latent/.ATTRIBUTES/VARIABLE_VALUE"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"


def write_projector(log_dir, embeddings, labels=None, class_names=None, images=None,
                    max_examples=PROJECTOR_EXAMPLES):
    """Writes an Embedding Projector view of `embeddings` into `log_dir`.

    Keeps the first `max_examples` rows. Files: the tensor in a TensorFlow checkpoint
    (`latent-1.*` and its `checkpoint` state file), `metadata.tsv` (columns `label` and
    `index`; only the index, headerless, without labels), `sprite.png` when `images` are
    given (a square grid of thumbnails, scaled down so the sprite stays within
    8192x8192 pixels), `projector_config.pbtxt` written by
    `tensorboard.plugins.projector`, and an empty event file that makes `log_dir` a
    TensorBoard run. Every argument is checked before anything is written.

    Args:
        log_dir: str or Path. Directory to write into (created if missing).
        embeddings: array (N, D). One vector per example.
        labels: array (N,) or None. Class ids (integers when `class_names` is given).
            Defaults to None.
        class_names: sequence of str or None. The name of each class id, written
            instead of the id. Defaults to None.
        images: array (N, H, W) or (N, H, W, C) or None. The inputs, float in [0, 1] or
            uint8, C in 1..4; None writes no sprite. Defaults to None.
        max_examples: int >= 0. Most examples to keep; 0 writes nothing, more than N
            keeps all N. Defaults to `PROJECTOR_EXAMPLES`.

    Returns:
        The path of `projector_config.pbtxt`, or None when `max_examples` is 0.

    Example:

    >>> write_projector("runs/demo/logs/projector", z_mean, labels=y_test,
    ...                 class_names=["T-shirt/top", "Trouser", ...], images=x_test)
    """
    if _check_max_examples(max_examples) == 0:
        return None
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or 0 in embeddings.shape:
        raise ValueError(f"embeddings must have shape (N, D) with N, D >= 1, got {embeddings.shape}")
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("embeddings contain NaN or infinite values")
    total = len(embeddings)
    n = min(int(max_examples), total)
    rows = _metadata_rows(_same_length(labels, "labels", total), class_names, n)
    sprite = None if images is None else _sprite(_same_length(images, "images", total)[:n])
    return _write(pathlib.Path(log_dir), embeddings[:n].astype("float32"), rows, sprite)


def _check_max_examples(max_examples):
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) \
            or max_examples < 0:
        raise ValueError(f"max_examples must be an integer >= 0, got {max_examples!r}")
    return int(max_examples)


def _same_length(array, name, total):
    if array is None:
        return None
    array = np.asarray(array)
    if array.ndim == 0 or len(array) != total:
        raise ValueError(
            f"{name} must have one entry per embedding ({total}), got shape {array.shape}"
        )
    return array


def _metadata_rows(labels, class_names, n):
    """The lines of metadata.tsv: a `label<TAB>index` header and rows, or bare indices."""
    if labels is None:
        if class_names is not None:
            raise ValueError("class_names needs labels: the class id of each embedding")
        return [str(i) for i in range(n)]
    if labels.ndim != 1:
        raise ValueError(f"labels must be a vector (N,), got shape {labels.shape}")
    labels = labels[:n]
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer class ids with class_names, got {labels.dtype}")
        bad = labels[(labels < 0) | (labels >= len(class_names))]
        if bad.size:
            raise ValueError(
                f"labels must be class ids in [0, {len(class_names)}) to match class_names, "
                f"got {bad[0]}"
            )
        labels = [class_names[label] for label in labels]
    names = [str(label) for label in labels]
    if any(("\t" in name or "\n" in name) for name in names):
        raise ValueError("labels and class_names must not contain tabs or newlines (metadata.tsv)")
    return ["label\tindex"] + [f"{name}\t{i}" for i, name in enumerate(names)]


def sprite_thumbnail_shape(count, height, width):
    """Thumbnail (height, width) that fits `count` of them in a square grid within
    SPRITE_LIMIT pixels per side; images are only ever scaled down, keeping their aspect.

    Example: 2,000 images of 250x250 sit in a 45x45 grid, so thumbnails are 182x182.
    """
    columns = math.ceil(math.sqrt(count))
    cell = SPRITE_LIMIT // columns
    if cell < 1:
        raise ValueError(f"{count} images cannot fit a {SPRITE_LIMIT}x{SPRITE_LIMIT} sprite")
    longest = max(height, width)
    if longest <= cell:
        return height, width
    return max(1, height * cell // longest), max(1, width * cell // longest)


def _sprite(images):
    """(sheet, (h, w)): thumbnails h x w, row by row in a square uint8 grid, then black."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or not 1 <= images.shape[-1] <= 4:
        raise ValueError(
            f"images must have shape (N, H, W) or (N, H, W, C) with C in 1..4, got {images.shape}"
        )
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be float in [0, 1] or uint8, got {images.dtype}")
        images = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype("uint8")
    n, height, width, channels = images.shape
    h, w = sprite_thumbnail_shape(n, height, width)
    columns = math.ceil(math.sqrt(n))
    sheet = np.zeros((columns * h, columns * w, channels), "uint8")
    # Resize in chunks: thousands of large images at once would need gigabytes of floats.
    for start in range(0, n, 256):
        chunk = images[start:start + 256]
        if (h, w) != (height, width):
            chunk = tf.image.resize(chunk, (h, w), method="area", antialias=True)
            chunk = np.round(np.clip(chunk.numpy(), 0, 255)).astype("uint8")
        for i, thumb in enumerate(chunk, start):
            row, col = divmod(i, columns)
            sheet[row * h:(row + 1) * h, col * w:(col + 1) * w] = thumb
    return sheet, (h, w)


def _write(log_dir, embeddings, rows, sprite):
    log_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = tf.train.Checkpoint(latent=tf.Variable(embeddings, trainable=False))
    # max_to_keep=1 replaces the embedding of an earlier call; the state file holds a
    # relative path, so the directory can be moved.
    tf.train.CheckpointManager(checkpoint, str(log_dir), max_to_keep=1,
                               checkpoint_name=CHECKPOINT_NAME).save()
    (log_dir / METADATA_FILE).write_text("\n".join(rows) + "\n", encoding="utf-8")

    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = TENSOR_NAME
    embedding.metadata_path = METADATA_FILE
    if sprite is not None:
        sheet, (height, width) = sprite
        tf.io.write_file(str(log_dir / SPRITE_FILE), tf.io.encode_png(sheet))
        embedding.sprite.image_path = SPRITE_FILE
        embedding.sprite.single_image_dim.extend([width, height])
    projector.visualize_embeddings(str(log_dir), config)
    if not any(log_dir.glob("events.out.tfevents.*")):
        # TensorBoard lists a directory as a run only if it holds an event file.
        tf.summary.create_file_writer(str(log_dir)).close()
    log.info("projector: %d embeddings of dimension %d in %s",
             len(embeddings), embeddings.shape[1], log_dir)
    return log_dir / "projector_config.pbtxt"


def latent_means(model, dataset, max_examples=PROJECTOR_EXAMPLES):
    """Encodes the first `max_examples` examples of a batched dataset to latent means
    (`vae_tf.analysis.evaluation.latent_features`, the model's `mean_code`). A
    conditional model is given the batch's labels.

    Args:
        model: a vae_tf model.
        dataset: tf.data.Dataset of batches `(images, labels)` or `images`, e.g. `splits.test`.
        max_examples: int >= 1. Most examples to encode. Defaults to `PROJECTOR_EXAMPLES`.

    Returns:
        (means (N, D) float32, labels (N,) or None if the data has none (or all are -1),
        inputs (N, ...)).

    Example:

    >>> z, y, x = latent_means(model, splits.test, max_examples=PROJECTOR_EXAMPLES)
    """
    if _check_max_examples(max_examples) == 0:
        raise ValueError("max_examples must be >= 1 to encode anything, got 0")
    means, labels, inputs = latent_features(model, dataset, max_examples, return_inputs=True)
    if labels is not None and np.all(labels < 0):
        labels = None  # vae_tf.data marks unlabelled sources with -1
    return means, labels, inputs


def write_latent_projector(log_dir, model, dataset, class_names=None, max_examples=PROJECTOR_EXAMPLES):
    """Writes the projector of `model`'s latent means of the first `max_examples` inputs.

    `latent_means` then `write_projector`; image inputs (rank 3 or 4 per batch) also
    give the sprite.

    Args:
        log_dir: str or Path. Directory to write into, e.g. `runs/NAME/logs/projector`.
        model: an autoencoder; see `latent_means`.
        dataset: iterable of batches `(images, labels)` or `images`, e.g. `splits.test`.
        class_names: sequence of str or None. Names of the class ids; ignored when the
            data has no labels. Defaults to None.
        max_examples: int >= 0. Most examples; 0 writes nothing and encodes nothing.
            Defaults to `PROJECTOR_EXAMPLES`.

    Returns:
        The path of `projector_config.pbtxt`, or None when `max_examples` is 0.

    Example:

    >>> write_latent_projector("runs/demo/logs/projector", model, splits.test,
    ...                        class_names=splits.class_names)
    """
    if _check_max_examples(max_examples) == 0:
        return None
    means, labels, inputs = latent_means(model, dataset, max_examples)
    if labels is None and class_names is not None:
        class_names = None  # unlabelled data: nothing to name
    images = inputs if inputs.ndim in (3, 4) else None
    return write_projector(log_dir, means, labels, class_names, images, max_examples)
