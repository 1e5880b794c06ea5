"""The SavedModel signatures a model of a vector code serves, as plain functions.

The models say what they can serve (`Autoencoder.export_signatures`); serving writes
them (`vae_tf.serving.export`) and adds the checks of a request it bounds (the largest
`num_samples`). Each signature takes named inputs and returns a dict of named outputs:

    serving_default, reconstruct   images [, labels] -> reconstructions, z_mean, z_log_var (AE: z)
    encode                         images [, labels] -> z_mean, z_log_var (AE: z)
    decode                         z [, labels]      -> images
    sample (with a prior or a latent sampler)  num_samples, seed [, labels] -> images
    score                          images [, labels] -> neg_elbo (AE: reconstruction NLL)

A model of a table's records (`model.input_name == "features"`) names `images`
`features` throughout.
"""

import tensorflow as tf

SCORE_SEED = (1234, 0)  # the `score` signature's fixed noise seed, so scores repeat


def vector_code_signatures(model, latent_sampler=None):
    """Returns {name: (function, input specs)} for every signature of `model`.

    Everything is asked of the model: `is_conditional`, `encode` (its named outputs),
    `code_name`, `per_example_terms` and `score_term`, and `can_sample` / `prior`
    (or `latent_sampler`, e.g. a fitted GaussianMixtureSampler, which gives any model
    a `sample` signature).
    """
    conditional = model.is_conditional
    image_shape, latent_dim = model.image_shape, model.latent_dim
    what = model.input_name  # "images", or "features" (float32 (None, F)) for a table's records
    images_spec = tf.TensorSpec((None, *image_shape), tf.float32, name=what)
    labels_spec = tf.TensorSpec((None,), tf.int32, name="labels")
    z_spec = tf.TensorSpec((None, latent_dim), tf.float32, name="z")
    if latent_sampler is None and model.can_sample:
        latent_sampler = model.prior

    def checked(images, labels):
        images = tf.ensure_shape(images, (None, *image_shape), name="images")
        if conditional:
            tf.debugging.assert_equal(
                tf.shape(labels)[0], tf.shape(images)[0],
                message="labels must have one entry per image",
            )
        return images, labels

    def encode(images, labels=None):
        images, labels = checked(images, labels)
        return model.encode(images, labels)

    def reconstruct(images, labels=None):
        codes = encode(images, labels)
        return {"reconstructions": model.decode(codes[model.code_name], labels), **codes}

    def decode(z, labels=None):
        z = tf.ensure_shape(z, (None, latent_dim), name="z")
        return {what: model.decode(z, labels)}

    def sample(num_samples, seed, labels=None):
        if conditional:
            tf.debugging.assert_equal(tf.shape(labels)[0], num_samples,
                                      message="labels must have num_samples entries")
        seed = tf.stack([seed, 0])
        return {what: model.decode_draw(latent_sampler.sample(num_samples, seed=seed), labels, seed)}

    def score(images, labels=None):
        images, labels = checked(images, labels)
        terms = model.per_example_terms(images, labels, seed=SCORE_SEED)
        return {"neg_elbo": terms[model.score_term]}

    extra = [labels_spec] if conditional else []
    signatures = {
        "serving_default": (reconstruct, [images_spec, *extra]),
        "reconstruct": (reconstruct, [images_spec, *extra]),
        "encode": (encode, [images_spec, *extra]),
        "decode": (decode, [z_spec, *extra]),
        "score": (score, [images_spec, *extra]),
    }
    if latent_sampler is not None:
        signatures["sample"] = (sample, sample_specs(conditional))
    return signatures


def sample_specs(conditional):
    """The inputs of every `sample` signature: num_samples, seed [, labels (num_samples,)]."""
    specs = [tf.TensorSpec((), tf.int32, name="num_samples"), tf.TensorSpec((), tf.int32, name="seed")]
    if conditional:
        specs.append(tf.TensorSpec((None,), tf.int32, name="labels"))
    return specs
