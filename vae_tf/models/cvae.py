"""The conditional VAE: class labels condition encoder and decoder."""

import keras
from keras import ops

from vae_tf.core.likelihoods import LIKELIHOOD
from vae_tf.core.layers import BETA
from vae_tf.models import registry
from vae_tf.models.loops import checks
from vae_tf.models.vae import VAE


@keras.saving.register_keras_serializable(package="vae_tf")
class CVAE(VAE):
    """Conditional VAE: the class label conditions both the encoder and the decoder.

    `fit` and `evaluate` take `(images, labels)`; `call` takes `[images, labels]`;
    every other method takes `labels` as an argument. The prior is N(0, I).

    Args:
        encoder: keras.Model. Maps `[images, label]` to `[z_mean, z_log_var, z]`.
        decoder: keras.Model. Maps `[z, label]` to logits or means.
        num_classes: int. Number of classes, >= 2.
        likelihood: str or likelihood layer. Defaults to "bernoulli".
        beta: float. KL weight. Defaults to 1.0.
        seed: int or None. Seed for `sample`. Defaults to None.

    Example:

    >>> cvae = make_model("cvae", "mlp", (28, 28, 1), 20, num_classes=10)
    >>> cvae.compile(); cvae.fit(x_train, y_train, epochs=10)
    >>> sevens = cvae.sample(16, labels=7)
    """

    is_conditional = True

    def __init__(self, encoder, decoder, num_classes, likelihood=LIKELIHOOD, beta=BETA,
                 seed=None, prior=None, **kwargs):
        if prior is not None and not prior.analytic_kl:
            raise ValueError("CVAE supports only the standard normal prior: a VampPrior's "
                             "pseudo-inputs carry no labels")
        super().__init__(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed,
                         prior=prior, **kwargs)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")
        self.num_classes = num_classes

    def _split_data(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "CVAE needs labels: pass (images, labels), e.g. fit(x, y) or a dataset "
                "of (image, label) pairs"
            )
        return x, y

    def _split_inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("CVAE is called on [images, labels]; predict takes them as "
                             "predict([images, labels]), or a dataset of ((images, labels),) elements "
                             "(Keras reads a dataset of (images, labels) pairs as inputs and targets)")
        return inputs

    def predict_step(self, data):
        # Keras's step, with the labels' range checked first (`checks.graph_label_checks`).
        images, labels = self._split_predict_data(data)
        return self([images, checks.graph_label_checks(self, labels)], training=False)

    def network_inputs(self, tensor, labels):
        if labels is None:
            raise ValueError("CVAE needs labels: integer class ids, one per example")
        labels = ops.convert_to_tensor(labels)
        if labels.shape.rank == 2 and labels.shape[-1] == 1:
            labels = ops.squeeze(labels, axis=-1)
        if labels.shape.rank != 1:
            raise ValueError(
                f"labels must be a vector of class ids, one per example, got shape "
                f"{tuple(labels.shape)}"
            )
        if "int" not in labels.dtype.name:
            raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype.name}")
        return [tensor, labels]

    def sample(self, num_samples, labels=None, seed=None, latent_sampler=None):
        """Generates images of chosen classes.

        Args:
            num_samples: int. Number of images, >= 1.
            labels: int, array of num_samples ints, or None to cycle through the classes.
            seed: int or None. Fixes the draws.
            latent_sampler: see `Autoencoder.sample`. Defaults to None (the prior).

        Returns:
            A tensor of shape (num_samples, *image_shape).
        """
        if labels is None:
            labels = ops.arange(num_samples, dtype="int32") % self.num_classes
        elif ops.ndim(labels) == 0:
            labels = ops.full((num_samples,), labels, dtype="int32")
        elif ops.shape(labels)[0] != num_samples:
            raise ValueError(
                f"labels has {ops.shape(labels)[0]} entries but num_samples is {num_samples}"
            )
        return super().sample(num_samples, labels=labels, seed=seed, latent_sampler=latent_sampler)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def _build(encoder, decoder, *, likelihood, beta, seed, num_classes, input_shape):
    return CVAE(encoder, decoder, num_classes, likelihood=likelihood, beta=beta, seed=seed)


registry.register(registry.Family(
    name="cvae",
    summary="conditional VAE: generate a chosen class; needs labels",
    model_class=CVAE, variational=True, conditional=True, build=_build,
))
