"""FactorVAE: the VAE loss plus gamma times the total correlation of q(z), estimated by a
discriminator trained alongside (the density-ratio trick)."""

import keras
import tensorflow as tf
from keras import ops

from vae_tf.core import density_ratio
from vae_tf.core.density_ratio import (DISCRIMINATOR_BETAS, DISCRIMINATOR_EPSILON, DISCRIMINATOR_LAYERS,
                                       DISCRIMINATOR_LR, DISCRIMINATOR_UNITS, DimensionPermutation)
from vae_tf.core.layers import BETA
from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.core.optimizers import FusedAdam
from vae_tf.models import registry
from vae_tf.models.vae import VAE

# gamma: the paper's 2D Shapes (dSprites) experiments and disentanglement_lib's study sweep
# gamma over {10, 20, 30, 40, 50, 100}; 40 is in the middle of that range.
FACTOR_TC_WEIGHT = 40.0


@keras.saving.register_keras_serializable(package="vae_tf")
class FactorVAE(VAE):
    """FactorVAE: a VAE whose loss adds gamma times a discriminator's estimate of the total
    correlation TC = KL(q(z) || prod_j q(z_j)) of its codes.

    Kim & Mnih, "Disentangling by Factorising", ICML 2018, eq. 2 and Algorithm 2: loss =
    reconstruction + beta * KL + gamma * TC, with TC ≈ mean over the batch of
    log D(z) - log(1 - D(z)) (section 3, the density-ratio trick; beta = 1 in the paper),
    and the discriminator D trained to tell codes z ~ q(z|x) from dimension-wise permuted
    codes (`vae_tf.core.density_ratio`). Both are trained in one `train_step`, each by its
    own optimizer: the model's (`compile`) the encoder and decoder on the loss, and
    `discriminator_optimizer`, Adam with the paper's learning rate 1e-4, beta_1 0.5,
    beta_2 0.9 (Appendix A), the discriminator on its cross-entropy. The paper's VAE
    optimizer is Adam with learning rate 1e-4, beta_1 0.9, beta_2 0.999: `--lr 1e-4`.

    One batch per step: the discriminator sees the batch's codes and their permutation,
    as in disentanglement_lib, where Algorithm 2 permutes the codes of a second batch.
    Within a batch the permutation already makes the dimensions independent (each
    coordinate comes from another example, but for a 1/B chance), and a second batch
    would cost a second encoder pass and make a step read two batches (an epoch half as
    many steps). Both updates use the gradients at the step's starting weights. The step
    runs in Keras's loop, the compiled XLA loop and under tf.distribute (both losses
    divided by the replicas) alike.

    The discriminator's weights are not in `trainable_weights` (what the model's optimizer
    trains); its optimizer is built with the model and is an attribute of it, so its state
    is saved in checkpoints and `.keras` files beside the weights and restored with them.

    Logged: loss, reconstruction, kl, total_correlation (the estimate, nats),
    discriminator_loss (nats; log 2 = 0.693 at chance) and discriminator_accuracy.

    Args:
        encoder, decoder, likelihood, beta, seed, prior: as for `VAE`.
        factor_tc_weight: float. gamma, the weight of the TC estimate, >= 0. Defaults to 40.0.
        discriminator_layers: int. Hidden layers of the discriminator. Defaults to 6.
        discriminator_units: int. Units per hidden layer. Defaults to 1000.
        discriminator_lr: float. Learning rate of the discriminator's Adam, > 0.
            Defaults to 1e-4.

    Example:

    >>> model = make_model("factorvae", "conv", (64, 64, 1), 10, factor_tc_weight=40.0)
    >>> model.compile(optimizer=FusedAdam(1e-4)); model.fit(images, epochs=10, batch_size=64)
    """

    loss_terms = ("loss", "reconstruction", "kl", "total_correlation", "discriminator_loss",
                  "discriminator_accuracy")

    def __init__(self, encoder, decoder, likelihood=LIKELIHOOD, beta=BETA, seed=None, prior=None,
                 factor_tc_weight=FACTOR_TC_WEIGHT, discriminator_layers=DISCRIMINATOR_LAYERS,
                 discriminator_units=DISCRIMINATOR_UNITS, discriminator_lr=DISCRIMINATOR_LR, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed, prior=prior, **kwargs)
        if not factor_tc_weight >= 0:
            raise ValueError(f"factor_tc_weight must be >= 0, got {factor_tc_weight}")
        if not discriminator_lr > 0:
            raise ValueError(f"discriminator_lr must be > 0, got {discriminator_lr}")
        self.factor_tc_weight = float(factor_tc_weight)
        self.discriminator_layers = discriminator_layers
        self.discriminator_units = discriminator_units
        self.discriminator_lr = float(discriminator_lr)
        self.discriminator = density_ratio.build_discriminator(self.latent_dim, discriminator_layers,
                                                               discriminator_units)
        # Another stream than the encoder's noise (seeded `seed`).
        self.permutation = DimensionPermutation(seed=None if seed is None else seed + 1)
        beta_1, beta_2 = DISCRIMINATOR_BETAS
        self.discriminator_optimizer = FusedAdam(learning_rate=self.discriminator_lr, beta_1=beta_1, beta_2=beta_2,
                                                 epsilon=DISCRIMINATOR_EPSILON, name="discriminator_adam")
        # Built now, in the model's distribution scope, so that its state exists for
        # checkpoints to load into and no step creates variables.
        self.discriminator_optimizer.build(self.discriminator.trainable_weights)

    def _not_discriminators(self, variables):
        theirs = {id(v) for v in self.discriminator.weights}
        return [v for v in variables if id(v) not in theirs]

    @property
    def trainable_weights(self):
        """The weights the model's optimizer trains: all but the discriminator's."""
        return self._not_discriminators(super().trainable_weights)

    @property
    def trainable_variables(self):
        """As `trainable_weights` (what `optimizer.build` is given)."""
        return self._not_discriminators(super().trainable_variables)

    @property
    def optimizer_variables(self):
        """The state of both optimizers: the model's (once compiled) and the discriminator's."""
        return super().optimizer_variables + list(self.discriminator_optimizer.variables)

    def density_ratio_terms(self, z, training=False):
        """The TC estimate at codes `z` (differentiable in z) and the discriminator's loss
        and accuracy on z and its permutation (differentiable in the discriminator only)."""
        fixed = ops.stop_gradient(z)
        permuted = self.permutation(fixed, training=training)
        logits = self.discriminator(ops.concatenate([z, permuted], axis=0), training=training)
        batch = ops.shape(z)[0]
        real, shuffled = logits[:batch], logits[batch:]
        terms = density_ratio.discriminator_terms(real, shuffled)
        return {"total_correlation": density_ratio.total_correlation(real), **terms}

    def compute_terms(self, x, labels=None, training=False):
        (_, _, z), terms = self._posterior_terms(x, labels, training)
        ratio = self.density_ratio_terms(z, training)
        # The discriminator's loss enters only its own gradient: a stopped z above.
        loss = terms["loss"] + self.factor_tc_weight * ratio["total_correlation"]
        return {**terms, "loss": loss, **ratio}

    def train_step(self, data):
        x, labels = self._checked_batch(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape(persistent=True) as tape:
            terms = self.compute_terms(x, labels, training=True)
            # Gradients are summed across replicas: each replica's losses are divided.
            loss = self.optimizer.scale_loss(terms["loss"] / replicas)
            discriminator_loss = self.discriminator_optimizer.scale_loss(terms["discriminator_loss"] / replicas)
        weights, theirs = self.trainable_weights, self.discriminator.trainable_weights
        gradients = tape.gradient(loss, weights)
        discriminator_gradients = tape.gradient(discriminator_loss, theirs)
        del tape
        self.optimizer.apply_gradients(zip(gradients, weights))
        self.discriminator_optimizer.apply_gradients(zip(discriminator_gradients, theirs))
        return self._record(terms)

    def get_config(self):
        return {
            **super().get_config(),
            "factor_tc_weight": self.factor_tc_weight,
            "discriminator_layers": self.discriminator_layers,
            "discriminator_units": self.discriminator_units,
            "discriminator_lr": self.discriminator_lr,
        }


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape, factor_tc_weight,
           discriminator_layers, discriminator_units, discriminator_lr):
    return FactorVAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                     factor_tc_weight=factor_tc_weight, discriminator_layers=discriminator_layers,
                     discriminator_units=discriminator_units, discriminator_lr=discriminator_lr)


def _check(options):
    if not options["discriminator_lr"] > 0:
        raise ValueError(f"discriminator_lr must be > 0, got {options['discriminator_lr']}")


registry.register(registry.Family(
    name="factorvae",
    summary="FactorVAE: penalizes a discriminator's estimate of the total correlation, for disentangled factors",
    model_class=FactorVAE, variational=True, conditional=False, build=_build,
    options=(
        registry.Option("factor_tc_weight", float, FACTOR_TC_WEIGHT,
                        "gamma, the weight of FactorVAE's total-correlation estimate", minimum=0.0),
        registry.Option("discriminator_layers", int, DISCRIMINATOR_LAYERS,
                        "hidden layers of FactorVAE's discriminator", minimum=1),
        registry.Option("discriminator_units", int, DISCRIMINATOR_UNITS,
                        "units per hidden layer of FactorVAE's discriminator", minimum=1),
        registry.Option("discriminator_lr", float, DISCRIMINATOR_LR,
                        "learning rate of FactorVAE's discriminator (Adam, beta_1 0.5, beta_2 0.9)",
                        minimum=0.0),
    ),
    check=_check,
))
