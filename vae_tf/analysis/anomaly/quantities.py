"""Per-example quantities the scores are made of, in TensorFlow ops (so an exported
graph computes them too): the PNG code length of an image and likelihood regret."""

import math

import tensorflow as tf
from keras import ops

from vae_tf.core.layers import clamp_log_var

_LN2 = math.log(2.0)


def png_nats(images):
    """Code length of each image as an 8-bit PNG (zlib level 9), in nats.

    The input-complexity estimate L(x) of Serra et al. (2020): the length of a lossless
    compression of x, here PNG as in the paper, times 8 ln 2 nats per byte. Made of
    TensorFlow ops (`tf.io.encode_png`), so it also runs inside a `tf.function` or an
    exported SavedModel signature and gives the same lengths there (a `tf.function`
    itself, so eager calls are not slowed by `tf.map_fn`).

    Args:
        images: array or tensor (n, H, W, C), C 1, 3 or 4, floats in [0, 1]. Quantized
            to 0-255 by rounding.

    Returns:
        A float32 tensor of n code lengths in nats.
    """
    pixels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)
    lengths = tf.map_fn(
        lambda image: tf.strings.length(tf.io.encode_png(image, compression=9)),
        pixels,
        fn_output_signature=tf.int32,
    )
    return tf.cast(lengths, tf.float32) * (8.0 * _LN2)


def reconstruction_nll(model, x, labels=None):
    """-log p(x | decoder(code)) per example at the model's deterministic code, in nats
    (`model.reconstruction_nll`: z of an AE, z_mean of a VAE, the nearest codes of a VQ-VAE)."""
    return model.reconstruction_nll(x, labels)


def regret_terms(model, x, labels, eps, steps, learning_rate):
    """(-ELBO with the encoder's q(z|x), -ELBO with q(z|x) fitted to x alone), per example.

    Likelihood regret (Xiao et al. 2020): how much the ELBO of x improves when the
    posterior is optimized for x alone. The paper re-trains the encoder per example; we
    optimize the posterior parameters (z_mean, z_log_var) of each example directly, with
    Adam on the same fixed noise draws `eps` (shape (draws, 1 or batch, latent)), so
    that all examples of a batch are optimized at once and the two ELBOs share their
    noise. The KL term is the model's own (`model.prior.kl`): analytic for N(0, I), a
    Monte-Carlo estimate at the draws for a learned prior such as the VampPrior.
    """

    def neg_elbo(z_mean, z_log_var):
        log_var = clamp_log_var(z_log_var)
        z = z_mean[None] + ops.exp(0.5 * log_var)[None] * eps  # (draws, batch, latent)
        draws = ops.shape(z)[0]
        flat = ops.reshape(z, (-1, ops.shape(z)[-1]))
        flat_labels = None if labels is None else ops.tile(labels, (draws,))
        params = model.decoder(model.network_inputs(flat, flat_labels), training=False)
        tiled = ops.tile(x, (draws,) + (1,) * (len(x.shape) - 1))
        nll = ops.reshape(model.likelihood.negative_log_likelihood(tiled, params), (draws, -1))
        # (batch,) for an analytic KL, (draws, batch) for a Monte-Carlo one: both broadcast.
        kl = model.prior.kl(z_mean[None], log_var[None], z)
        return ops.mean(nll + kl, axis=0)

    codes = model.encode(x, labels)
    z_mean, z_log_var = codes["z_mean"], codes["z_log_var"]
    before = neg_elbo(z_mean, z_log_var)
    latent = ops.shape(z_mean)[-1]

    def fitted_neg_elbo(params):
        return neg_elbo(params[:, :latent], params[:, latent:])

    def adam_step(step, params, moment, square):
        # Adam by hand on tensors: a keras optimizer would need new variables per batch.
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = ops.sum(fitted_neg_elbo(params))
        grad = tape.gradient(loss, params)
        step += 1.0
        moment = 0.9 * moment + 0.1 * grad
        square = 0.999 * square + 0.001 * grad * grad
        update = (moment / (1.0 - 0.9**step)) / (ops.sqrt(square / (1.0 - 0.999**step)) + 1e-8)
        return step, params - learning_rate * update, moment, square

    start = ops.concatenate([z_mean, z_log_var], axis=-1)
    _, fitted, _, _ = tf.while_loop(
        lambda step, *_: step < steps,
        adam_step,
        (tf.constant(0.0), start, ops.zeros_like(start), ops.zeros_like(start)),
    )
    after = fitted_neg_elbo(fitted)
    # The starting point is one candidate: regret is never negative.
    return before, ops.minimum(before, after)


def regret_noise(model, draws, seed):
    """The noise of `regret`: `draws` standard normal latent draws shared by every example.

    Stateless (a function of `seed` alone), so every batch, and an exported graph, uses
    the same draws: an example's regret does not depend on its batch.
    """
    return tf.random.stateless_normal((draws, 1, model.latent_dim), seed=(seed, 0))


def regret_graph(model, steps, draws, learning_rate, seed):
    """The `regret` score of a batch, (x, labels) -> (batch,), as TensorFlow ops only
    (no Python loop, stateless noise), so it also runs in an exported signature."""

    def regret(x, labels):
        eps = regret_noise(model, draws, seed)
        before, after = regret_terms(model, x, labels, eps, steps, learning_rate)
        return before - after

    return regret
