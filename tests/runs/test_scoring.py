"""The chunked scoring engine (`vae_tf.analysis.anomaly.streaming`) behind `score_data`,
`calibrate_run` and `ood_report`."""

import numpy as np
import pytest

from vae_tf.analysis import anomaly
from vae_tf.analysis.anomaly.streaming import stream_scores
from vae_tf.models.factory import make_model


@pytest.fixture(scope="module")
def tiny_ae():
    return make_model("ae", "mlp", (28, 28, 1), 2, hidden_units=(8,), seed=0)


def test_chunks_of_uneven_batches_give_the_scores_of_one_call(tiny_ae):
    images = np.random.default_rng(0).random((30, 28, 28, 1)).astype("float32")
    labels = np.arange(30)
    batches = [(images[a:b], labels[a:b]) for a, b in ((0, 5), (5, 23), (23, 30))]
    scorer = anomaly.Scorer(tiny_ae, ["reconstruction", "complexity"])
    scores, streamed_labels = stream_scores(scorer, batches, chunk=7, verbose=False)
    expected = anomaly.score(tiny_ae, images, ["reconstruction", "complexity"])
    for method in expected:
        np.testing.assert_allclose(scores[method], expected[method], rtol=1e-5)
    np.testing.assert_array_equal(streamed_labels, labels)  # passed through, in order


def test_unlabelled_batches_give_no_labels_and_empty_data_is_refused(tiny_ae):
    scorer = anomaly.Scorer(tiny_ae, ["reconstruction"])
    scores, labels = stream_scores(scorer, [(np.zeros((3, 28, 28), "uint8"), None)], verbose=False)
    assert labels is None and scores["reconstruction"].shape == (3,)
    with pytest.raises(ValueError, match="the data is empty"):
        stream_scores(scorer, [], verbose=False)
