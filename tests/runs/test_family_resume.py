"""A run of each newer family, interrupted after its first epoch's checkpoint, resumes to
exactly the weights of an uninterrupted run (noise positions, schedules and all)."""

import keras
import numpy as np
import pytest

from helpers import InterruptAfter
from vae_tf.runs.training import train

FAMILY_SETTINGS = {
    "wae": {},
    "infovae": {},
    "hvae": dict(train_samples=2, top_latent_dim=2, top_hidden_units=8),
    # Annealed every step, so the temperature differs between epochs.
    "gumbel": dict(gumbel_categories=3, gumbel_anneal_every=1, gumbel_anneal_rate=0.01),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", FAMILY_SETTINGS)
def test_an_interrupted_run_resumes_to_exactly_the_uninterrupted_weights(kind, small_config, tmp_path):
    settings = dict(model=kind, hidden_units=(32,), epochs=3, out=str(tmp_path), deterministic=True,
                    binarize="dynamic", projector_examples=0, **FAMILY_SETTINGS[kind])
    reference = train(small_config(name="reference", **settings), verbose=0)
    config = small_config(name="resumed", **settings)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[InterruptAfter(epoch=0)])
    resumed = train(config, verbose=0)
    mine = keras.saving.load_model(resumed.path / "model.keras")
    theirs = keras.saving.load_model(reference.path / "model.keras")
    for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    if kind == "gumbel":  # the temperature is among the weights; it did anneal
        assert float(mine.temperature) == float(theirs.temperature) < 1.0
