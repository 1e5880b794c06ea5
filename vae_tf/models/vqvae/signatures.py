"""The SavedModel signatures a VQ-VAE serves (`VQVAE.export_signatures`).

encode: images -> codes (int32), z_e;  decode: codes -> images;
serving_default, reconstruct: images -> reconstructions, codes;
score: images -> neg_elbo (the reconstruction NLL in nats);  and, with a prior,
sample: num_samples, seed [, labels] -> images, codes (the same seed gives the same
images). Codes outside [0, num_embeddings) fail an assertion; shapes other than the
specs are refused when the signature is called.
"""

import tensorflow as tf

from vae_tf.models.signatures import sample_specs


def grid_code_signatures(model, latent_sampler=None):
    """Returns {name: (function, input TensorSpecs)} of a VQ-VAE (see the module)."""
    if latent_sampler is not None:
        raise ValueError("a VQ-VAE exports its attached prior's sampler, not a latent_sampler")
    images_spec = tf.TensorSpec((None, *model.image_shape), tf.float32, name="images")
    codes_spec = tf.TensorSpec((None, *model.grid_shape), tf.int32, name="codes")

    def encode(images):
        return model.encode(images)

    def decode(codes):
        return {"images": model.decode(codes)}

    def reconstruct(images):
        codes = model.encode(images)["codes"]
        return {"reconstructions": model.decode(codes), "codes": codes}

    def score(images):
        return {"neg_elbo": model.per_example_terms(images)[model.score_term]}

    signatures = {
        "serving_default": (reconstruct, [images_spec]),
        "encode": (encode, [images_spec]),
        "decode": (decode, [codes_spec]),
        "reconstruct": (reconstruct, [images_spec]),
        "score": (score, [images_spec]),
    }
    if model.prior is not None:
        signatures["sample"] = (_sample(model), sample_specs(model.prior.is_conditional))
    return signatures


def _sample(model):
    prior = model.prior

    def sample(num_samples, seed, labels=None):
        if prior.is_conditional:
            tf.debugging.assert_equal(tf.shape(labels)[0], num_samples,
                                      message="labels must have num_samples entries")
        codes = prior.sample_codes_graph(num_samples, seed, 1.0, labels)
        return {"images": model.decode(codes), "codes": codes}

    return sample
