"""`make_model`: one call from (kind, arch, shapes) to a ready model of any registered family."""

import math

import numpy as np

from vae_tf.core import likelihoods, networks
from vae_tf.core.networks import ACTIVATION, FILTERS, HIDDEN_UNITS
from vae_tf.core.layers import BETA, FREE_BITS
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.models import registry

ARCHS = ("mlp", "conv")


def make_model(
    kind,
    arch,
    input_shape,
    latent_dim,
    num_classes=None,
    *,
    hidden_units=HIDDEN_UNITS,
    filters=FILTERS,
    dense_units=None,
    activation=ACTIVATION,
    likelihood=LIKELIHOOD,
    sigma=None,
    learn_sigma=False,
    beta=BETA,
    free_bits=FREE_BITS,
    seed=None,
    feature_scaling=None,
    **options,
):
    """Builds encoder, decoder and model of one kind and architecture.

    Decoders mirror encoders: the MLP decoder uses `hidden_units` reversed, the conv
    decoder `filters` reversed.

    Args:
        kind: str. A registered family: `vae_tf.models.registry.names()`, e.g. "ae",
            "vae", "cvae", "iwae", "tcvae".
        arch: str. "mlp" or "conv".
        input_shape: tuple. Shape of one image, e.g. (28, 28, 1).
        latent_dim: int. Size of z, >= 1.
        num_classes: int or None. Number of classes; required for (and only for)
            conditional families ("cvae").
        hidden_units: tuple of int. MLP widths. Defaults to `HIDDEN_UNITS`.
        filters: tuple of int. Conv encoder filters. Defaults to `FILTERS`.
        dense_units: int or None. Conv only: a dense layer before the latent heads.
        activation: str. Of the hidden layers, `networks.ACTIVATIONS`; families with
            networks of their own (VQ-VAE) take only the default. Defaults to `ACTIVATION`.
        likelihood: str. "bernoulli", "gaussian" or "feature_gaussian" (one learned sigma
            per feature; vector inputs). Defaults to `LIKELIHOOD`.
        sigma: float or None. Gaussian sigma (its initial value if learned).
        learn_sigma: bool. Learn the Gaussian sigma. Defaults to False.
        beta: float. KL weight (variational families). Defaults to `BETA`.
        free_bits: float. Per-dimension KL floor in nats (variational families, standard
            normal prior). Defaults to `FREE_BITS`.
        seed: int or None. Seeds the sampling noise. Defaults to None.
        feature_scaling: (mean, variance) or None. Tables (input_shape (F,), arch "mlp"):
            the training split's per-feature mean and variance. The encoder standardizes
            raw records with them and the decoder maps its output back, so the model
            takes and returns raw records; "feature_gaussian" starts each sigma at the
            feature's standard deviation. Defaults to None.
        **options: the family's own options, `registry.get(kind).options` (e.g.
            `train_samples` for "iwae", `prior="vamp"`); each is validated.

    Returns:
        An uncompiled model of the family.

    Example:

    >>> model = make_model("vae", "mlp", (28, 28, 1), latent_dim=20)
    >>> model.compile()
    >>> iwae = make_model("iwae", "mlp", (28, 28, 1), 20, train_samples=5, prior="vamp")
    """
    family = registry.get(kind)
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    family.check_arch(arch)
    if family.conditional and num_classes is None:
        raise ValueError(f"num_classes is required for kind {kind!r}")
    if not family.conditional and num_classes is not None:
        raise ValueError(f"num_classes applies only to conditional kinds, not {kind!r}")
    if not family.variational and (beta != BETA or free_bits):
        raise ValueError(f"beta and free_bits apply only to variational kinds, not {kind!r}")
    options = family.resolve(options)
    if feature_scaling is not None and (arch != "mlp" or len(tuple(input_shape)) != 1):
        raise ValueError(f"feature_scaling needs arch 'mlp' and vector inputs (F,), got arch {arch!r} "
                         f"and input_shape {tuple(input_shape)}")
    if likelihood == "feature_gaussian" and sigma is None and feature_scaling is not None:
        sigma = np.sqrt(np.asarray(feature_scaling[1], "float64"))
    likelihood = likelihoods.get(likelihood, sigma=sigma, learn_sigma=learn_sigma,
                                 num_features=math.prod(input_shape))

    if family.networks is not None and activation != ACTIVATION:
        raise ValueError(f"kind {kind!r} builds its own networks: activation must be {ACTIVATION!r}, "
                         f"got {activation!r}")
    encoder_kwargs = {"num_classes": num_classes, "variational": family.variational, "activation": activation}
    if family.variational:
        encoder_kwargs.update(free_bits=free_bits, seed=seed)
    if family.networks is not None:
        encoder, decoder = family.networks(
            arch, tuple(input_shape), tuple(filters), latent_dim=latent_dim, hidden_units=tuple(hidden_units),
            dense_units=dense_units, activation=activation, scaling=feature_scaling, free_bits=free_bits,
            seed=seed, **options)
    elif arch == "mlp":
        encoder = networks.build_mlp_encoder(
            input_shape, latent_dim, hidden_units, scaling=feature_scaling, **encoder_kwargs
        )
        decoder = networks.build_mlp_decoder(
            input_shape, latent_dim, tuple(reversed(hidden_units)), num_classes, scaling=feature_scaling,
            activation=activation,
        )
    else:
        encoder = networks.build_conv_encoder(
            input_shape, latent_dim, filters, dense_units=dense_units, **encoder_kwargs
        )
        decoder = networks.build_conv_decoder(
            input_shape, latent_dim, tuple(reversed(filters)), num_classes, activation=activation
        )
    return family.build(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                        num_classes=num_classes, input_shape=tuple(input_shape), **options)
