"""Scores of data too large to hold at once: numpy batches scored in chunks by one `Scorer`."""

import keras
import numpy as np

CHUNK = 2048  # images per `Scorer` call: big enough to batch well, small enough to hold


def stream_scores(scorer, batches, count=None, chunk=CHUNK, verbose=True):
    """Scores numpy batches in chunks of about `chunk` examples.

    One `vae_tf.analysis.anomaly.Scorer` serves every chunk, so each score's graph is
    traced once. A conditional model gets each batch's labels; other models' labels are
    only passed through (e.g. for a CSV column).

    Args:
        scorer: `vae_tf.analysis.anomaly.Scorer`.
        batches: iterable of (inputs, labels or None) numpy arrays.
        count: int or None. The number of examples, for the progress bar. Defaults to None.
        chunk: int. Examples per scorer call. Defaults to `CHUNK`.
        verbose: bool. Show a Keras progress bar. Defaults to True.

    Returns:
        ({method: scores}, labels or None) as numpy arrays.

    Example:

    >>> from vae_tf import make_model
    >>> from vae_tf.analysis.anomaly import Scorer
    >>> model = make_model("ae", "mlp", (28, 28, 1), 2, hidden_units=(8,))
    >>> batches = [(np.zeros((3, 28, 28), np.uint8), None), (np.ones((2, 28, 28), np.uint8), None)]
    >>> scores, _ = stream_scores(Scorer(model, ["reconstruction"]), batches, chunk=4, verbose=False)
    >>> scores["reconstruction"].shape
    (5,)
    """
    progress = keras.utils.Progbar(count, unit_name="image", verbose=int(verbose))
    parts, all_labels, pending = [], [], []

    def flush():
        images = np.concatenate([x for x, _ in pending])
        labels = None if pending[0][1] is None else np.concatenate([y for _, y in pending])
        parts.append(scorer(images, labels if scorer.model.is_conditional else None))
        all_labels.append(labels)
        progress.add(len(images))
        pending.clear()

    for images, labels in batches:
        for start in range(0, len(images), chunk):
            part = slice(start, start + chunk)
            pending.append((images[part], None if labels is None else labels[part]))
            if sum(len(x) for x, _ in pending) >= chunk:
                flush()
    if pending:
        flush()
    if not parts:
        raise ValueError("the data is empty: nothing to score")
    scores = {m: np.concatenate([p[m] for p in parts]) for m in parts[0]}
    labels = None if all_labels[0] is None else np.concatenate(all_labels)
    return scores, labels
