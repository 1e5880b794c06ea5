"""Every serializable vae_tf object round-trips through its config, and every model through
a `.keras` file with safe mode on. A class registered without a case here fails the
coverage test, so new layers and families cannot skip it."""

import keras
import numpy as np
import pytest

import vae_tf
from vae_tf.core.optimizers import StagedDecay
from helpers import families, run_model_saving_test, run_serialization_test
from vae_tf.core.categorical import GumbelSoftmax, UniformCategorical
from vae_tf.core import flows, likelihoods, priors
from vae_tf.core.layers import OneHot, Sampling
from vae_tf.core.density_ratio import DimensionPermutation
from vae_tf.core.mmd import PriorDraws
from vae_tf.models import registry
from vae_tf.models.vqvae.pixelcnn import CausalConv2D, PixelCNNPrior
from vae_tf.models.vqvae.quantizer import VectorQuantizer
from vae_tf.models.vqvae.model import make_vqvae
from vae_tf.models.vqvae.prior import make_prior

SHAPE = (28, 28, 1)
IMAGES = np.random.default_rng(0).uniform(size=(4, *SHAPE)).astype("float32")
LABELS = np.array([0, 1, 2, 1], "int32")

PARTS = {
    "Sampling": lambda: Sampling(beta=0.5, free_bits=0.1, seed=3),
    "OneHot": lambda: OneHot(4),
    "Bernoulli": likelihoods.Bernoulli,
    "Gaussian": lambda: likelihoods.Gaussian(sigma=0.5, learn_sigma=True),
    "FeatureGaussian": lambda: likelihoods.FeatureGaussian(3, sigma=[0.5, 1.0, 2.0]),
    "StandardNormal": lambda: priors.StandardNormal(3),
    "PriorDraws": lambda: PriorDraws(seed=4),
    "DimensionPermutation": lambda: DimensionPermutation(seed=5),
    "VampPrior": lambda: priors.VampPrior(3, num_components=2, input_shape=(6,)),
    "VectorQuantizer": lambda: VectorQuantizer(8, 4, ema=True, seed=1),
    "CausalConv2D": lambda: CausalConv2D(4, 3, "horizontal", include_centre=False),
    "PixelCNNPrior": lambda: PixelCNNPrior(8, (3, 3), filters=4, num_layers=2),
    "FusedAdam": lambda: vae_tf.FusedAdam(learning_rate=0.01),
    "StagedDecay": lambda: StagedDecay(1e-3, steps_per_pass=10, stages=4),
    "GumbelSoftmax": lambda: GumbelSoftmax(4, temperature=2.0, temperature_min=0.3, anneal_rate=1e-3,
                                           anneal_every=10, straight_through=True, beta=0.5, free_bits=0.1, seed=3),
    "UniformCategorical": lambda: UniformCategorical(3, 4),
    "PlanarStep": flows.PlanarStep,
    "IAFStep": lambda: flows.IAFStep(8, reverse=True),
    "Flow": lambda: flows.Flow("iaf", 3, 8),
}


def family_model(kind):
    conditional = registry.get(kind).conditional
    arch = "mlp" if kind in families("mlp") else "conv"
    return vae_tf.make_model(kind, arch, SHAPE, 3, num_classes=3 if conditional else None,
                             hidden_units=(8,), filters=(4, 4), seed=0)


def vqvae_with_prior():
    model = make_vqvae(SHAPE, num_embeddings=8, embedding_dim=2, filters=(4, 4), seed=0)
    model.attach_prior(make_prior(model, filters=4, num_layers=2))
    return model


@pytest.mark.parametrize("name", sorted(PARTS))
def test_part_round_trips_through_its_config(name):
    run_serialization_test(PARTS[name]())


@pytest.mark.parametrize("kind", registry.names())  # and a VQ-VAE with its prior below
def test_family_round_trips_through_config_and_keras_file(kind, tmp_path):
    model = family_model(kind)
    model.compile()
    run_serialization_test(model)
    labels = LABELS if model.is_conditional else None
    run_model_saving_test(model, lambda m: m.reconstruct(IMAGES, labels), tmp_path)


def test_vqvae_round_trips_through_config_and_keras_file(tmp_path):
    model = vqvae_with_prior()
    run_serialization_test(model)
    restored = run_model_saving_test(model, lambda m: m.reconstruct(IMAGES), tmp_path)
    np.testing.assert_array_equal(restored.sample(2, seed=5), model.sample(2, seed=5))


def test_every_registered_vae_tf_class_has_a_case():
    registered = {key.split(">", 1)[1] for key in keras.saving.get_custom_objects() if key.startswith("vae_tf>")}
    covered = set(PARTS) | {registry.get(kind).model_class.__name__ for kind in registry.names()} | {"VQVAE"}
    assert registered <= covered, f"no serialization case for {sorted(registered - covered)}"
