"""AnnealedVAE: the KL pushed towards a capacity C that rises during training."""

import keras
from keras import ops

from vae_tf.core.layers import BETA
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.models import registry
from vae_tf.models.vae import VAE

# disentanglement_lib's AnnealedVAE in the study of Locatello et al. (2019)
# (config/unsupervised_study_v1/sweep.py): gamma 1000, C reached after 100,000 steps;
# C_max is swept over {5, 10, 25, 50, 75, 100} nats, 25 is the middle of that sweep.
CAPACITY_MAX = 25.0
CAPACITY_STEPS = 100_000
CAPACITY_WEIGHT = 1000.0


def capacity_at(step, capacity_max, capacity_steps):
    """C at optimizer step `step`: C_max * min(1, step / capacity_steps), in nats.

    Args:
        step: int or tensor. Optimizer steps taken (0 for the first step).
        capacity_max: float. C_max, nats.
        capacity_steps: int. Steps to reach C_max, >= 1.

    Returns:
        A float32 scalar tensor.

    Example:

    >>> float(capacity_at(50, 25.0, 100))
    12.5
    """
    fraction = ops.cast(step, "float32") / float(capacity_steps)
    return capacity_max * ops.minimum(fraction, 1.0)


@keras.saving.register_keras_serializable(package="vae_tf")
class AnnealedVAE(VAE):
    """AnnealedVAE: reconstruction + gamma * |KL - C|, C raised linearly from 0 to C_max.

    Burgess, Higgins, Pal, Matthey, Watters, Desjardins & Lerchner, "Understanding
    disentangling in beta-VAE", arXiv:1804.03599, 2018, eq. 8 (section 5): the KL is
    pushed towards a target capacity C, raised during training so the code gains
    information gradually. C at step t is `capacity_at(t, capacity_max, capacity_steps)`,
    with t the optimizer's iteration count, read inside the step: C is saved with the
    optimizer and a resumed run continues the same schedule (0 before `compile`). As in
    disentanglement_lib and the paper's replications, |.| applies to the batch's mean
    KL (eq. 8 is written for one x); `kl` and `capacity` are logged so one sees the KL
    track C. `beta` (the KL weight variable every variational family has, 1 by default:
    eq. 8 itself) scales the whole capacity term, so `--kl-warmup-epochs` ramps it in.

    Args:
        encoder, decoder, likelihood, beta, seed, prior: as for `VAE`.
        capacity_max: float. C_max in nats, >= 0. Defaults to 25.0.
        capacity_steps: int. Optimizer steps over which C rises to C_max, >= 1.
            Defaults to 100000.
        capacity_weight: float. gamma, >= 0. Defaults to 1000.0.

    Example:

    >>> model = make_model("annealedvae", "conv", (64, 64, 1), 10, capacity_max=25.0)
    >>> model.compile(); model.fit(images, epochs=5)    # history["kl"] follows history["capacity"]
    """

    loss_terms = ("loss", "reconstruction", "kl", "capacity")

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, beta=BETA, seed=None, prior=None,
                 capacity_max=CAPACITY_MAX, capacity_steps=CAPACITY_STEPS,
                 capacity_weight=CAPACITY_WEIGHT, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                         prior=prior, **kwargs)
        if not capacity_max >= 0:
            raise ValueError(f"capacity_max must be >= 0, got {capacity_max}")
        if isinstance(capacity_steps, bool) or not isinstance(capacity_steps, int) or capacity_steps < 1:
            raise ValueError(f"capacity_steps must be an integer >= 1, got {capacity_steps}")
        if not capacity_weight >= 0:
            raise ValueError(f"capacity_weight must be >= 0, got {capacity_weight}")
        if self.sampling.free_bits:
            raise ValueError("free_bits does not apply to AnnealedVAE: C sets its KL target")
        self.capacity_max = float(capacity_max)
        self.capacity_steps = capacity_steps
        self.capacity_weight = float(capacity_weight)

    def capacity(self):
        """C now, from the optimizer's iteration count (a variable, so never frozen in a graph)."""
        optimizer = getattr(self, "optimizer", None)
        step = 0 if optimizer is None else optimizer.iterations
        return capacity_at(step, self.capacity_max, self.capacity_steps)

    def compute_terms(self, x, labels=None, training=False):
        x = self._check_images(x)
        z_mean, z_log_var, z = self._posterior(x, labels, training)
        reconstruction = ops.mean(self._decoder_nll(x, z, labels, training=training))
        kl = ops.mean(self.prior.kl(z_mean, z_log_var, z))
        capacity = self.capacity()
        loss = reconstruction + self.beta * self.capacity_weight * ops.abs(kl - capacity)
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl, "capacity": capacity}

    def get_config(self):
        return {
            **super().get_config(),
            "capacity_max": self.capacity_max,
            "capacity_steps": self.capacity_steps,
            "capacity_weight": self.capacity_weight,
        }


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, capacity_max,
           capacity_steps, capacity_weight):
    return AnnealedVAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                       capacity_max=capacity_max, capacity_steps=capacity_steps,
                       capacity_weight=capacity_weight)


registry.register(registry.Family(
    name="annealedvae",
    summary="AnnealedVAE: the KL pushed towards a capacity C raised during training",
    model_class=AnnealedVAE, variational=True, conditional=False, build=_build,
    options=(
        registry.Option("capacity_max", float, CAPACITY_MAX, "C_max, the final KL target in nats",
                        minimum=0.0),
        registry.Option("capacity_steps", int, CAPACITY_STEPS,
                        "optimizer steps over which C rises linearly from 0 to C_max", minimum=1),
        registry.Option("capacity_weight", float, CAPACITY_WEIGHT, "gamma, the weight of |KL - C|",
                        minimum=0.0),
    ),
))
