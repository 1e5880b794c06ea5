"""Mixed precision: float16 compute on GPUs, bfloat16 on CPUs with bfloat16 instructions,
and the default for a run (`policy_name`): bfloat16 for conv networks on such CPUs.

Weights, the latent code, the KL term and the likelihood stay float32 (see
`networks._latent_head` and `likelihoods`). Under `mixed_float16` Keras's `compile`
wraps the optimizer in a `LossScaleOptimizer`, whose `scale_loss` the models'
`train_step` applies; bfloat16 has float32's exponent range and needs no scaling.
"""

import contextlib

import keras
import tensorflow as tf

from vae_tf.runtime.cpu import cpu_flags

# /proc/cpuinfo flags of CPUs with bfloat16 arithmetic (x86 AVX-512 / AMX, Arm).
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """True or False from the CPU flags in `cpuinfo`; None where it cannot be read."""
    flags = cpu_flags(cpuinfo)
    return None if flags is None else any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def mixed_policy_name(num_gpus=None, has_bfloat16=None):
    """The mixed precision policy for this machine.

    Args:
        num_gpus: int or None. None counts the visible GPUs.
        has_bfloat16: bool or None. None reads the CPU flags.

    Returns:
        "mixed_float16" with a GPU, else "mixed_bfloat16".

    Raises:
        ValueError: no GPU and a CPU without bfloat16 instructions, where mixed
            precision would be slower than float32.
    """
    if num_gpus is None:
        num_gpus = len(tf.config.list_physical_devices("GPU"))
    if num_gpus:
        return "mixed_float16"
    if has_bfloat16 is None:
        has_bfloat16 = cpu_has_bfloat16()
    if has_bfloat16 is False:
        raise ValueError(
            "mixed precision needs a GPU or a CPU with bfloat16 instructions "
            f"({', '.join(BFLOAT16_CPU_FLAGS)} in /proc/cpuinfo); this CPU has none, "
            "so train in float32 (drop --mixed-precision)"
        )
    return "mixed_bfloat16"


def policy_name(mixed_precision, convolutional, num_gpus=None, has_bfloat16=None):
    """The dtype policy of a run: `vae-tf train --mixed-precision / --no-mixed-precision`,
    or by default the faster one where it was measured.

    The default is `mixed_bfloat16` for convolutional networks on a CPU with bfloat16
    instructions and no GPU: there the conv VAE trained up to 1.5-2.5x faster than in
    float32 (level with it in a slow process of a noisy machine) with a test -ELBO within
    0.5% (README, Performance). Everything else defaults to float32: dense layers gain
    little, and GPUs were not measured.

    Args:
        mixed_precision: bool or None. True: `mixed_policy_name()`; False: "float32";
            None: the default above.
        convolutional: bool. Whether the networks are convolutional.
        num_gpus, has_bfloat16: as in `mixed_policy_name`.

    Returns:
        A Keras dtype policy name.
    """
    if mixed_precision is None:
        if num_gpus is None:
            num_gpus = len(tf.config.list_physical_devices("GPU"))
        if has_bfloat16 is None:
            has_bfloat16 = cpu_has_bfloat16()
        mixed_precision = convolutional and not num_gpus and bool(has_bfloat16)
    return mixed_policy_name(num_gpus, has_bfloat16) if mixed_precision else "float32"


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras's global dtype policy to `name` inside the block, then restores it.

    Layers take the policy when they are built, so build the model inside the block.

    Example:

    >>> with dtype_policy(mixed_policy_name()):
    ...     model = make_model("vae", "conv", (28, 28, 1), 2)
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _as_float32(config):
    """A serialized Keras object with every dtype policy in it set to float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _as_float32(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_as_float32(value) for value in config]
    return config


def float32_copy(model):
    """`model` itself if it computes in float32, else the same model rebuilt in float32
    with its weights (mixed precision keeps them in float32, so nothing is rounded).

    Everything after training uses it (`Run.model`, a run's metrics and plots, exports):
    a serving CPU may lack bfloat16 instructions (where bfloat16 convolutions are
    emulated, slowly), TFLite has no bfloat16 kernels, and a calibrated threshold must
    see the scores the SavedModel computes.
    """
    if model.dtype_policy.name == "float32":
        return model
    with dtype_policy("float32"):
        copy = keras.saving.deserialize_keras_object(_as_float32(keras.saving.serialize_keras_object(model)))
    copy.set_weights(model.get_weights())
    return copy
