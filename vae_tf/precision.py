"""Mixed precision: float16 compute on GPUs, bfloat16 on CPUs with bfloat16 instructions.

Weights, the latent code, the KL term and the likelihood stay float32 (see
`networks._latent_head` and `likelihoods`). Under `mixed_float16` Keras's `compile`
wraps the optimizer in a `LossScaleOptimizer`, whose `scale_loss` the models'
`train_step` applies; bfloat16 has float32's exponent range and needs no scaling.
"""

import contextlib

import keras
import tensorflow as tf

from vae_tf.cpu import cpu_flags

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
