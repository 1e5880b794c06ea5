"""A run of each newer family, interrupted after its first epoch's checkpoint, resumes to
exactly the weights of an uninterrupted run (noise positions, schedules and all)."""

import keras
import numpy as np
import pytest

from helpers import InterruptAfter
from vae_tf.runs.training import train

CASES = {
    "wae": dict(model="wae"),
    "infovae": dict(model="infovae"),
    "hvae": dict(model="hvae", train_samples=2, top_latent_dim=2, top_hidden_units=8),
    # Annealed every step, so the temperature differs between epochs.
    "gumbel": dict(model="gumbel", gumbel_categories=3, gumbel_anneal_every=1, gumbel_anneal_rate=0.01),
    "flowvae-iaf": dict(model="flowvae", flow="iaf", flow_steps=2),
    "flowvae-planar": dict(model="flowvae", flow="planar", flow_steps=2),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_an_interrupted_run_resumes_to_exactly_the_uninterrupted_weights(case, small_config, tmp_path):
    settings = dict(hidden_units=(32,), epochs=3, out=str(tmp_path), deterministic=True,
                    binarize="dynamic", projector_examples=0, **CASES[case])
    reference = train(small_config(name="reference", **settings), verbose=0)
    config = small_config(name="resumed", **settings)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[InterruptAfter(epoch=0)])
    resumed = train(config, verbose=0)
    mine = keras.saving.load_model(resumed.path / "model.keras")
    theirs = keras.saving.load_model(reference.path / "model.keras")
    for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    if case == "gumbel":  # the temperature is among the weights; it did anneal
        assert float(mine.temperature) == float(theirs.temperature) < 1.0
