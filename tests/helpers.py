"""Shared test helpers in the style of keras-hub's TestCase, without importing `keras.src`.

`run_serialization_test` checks a layer, prior, optimizer or model rebuilds from its
config; `run_model_saving_test` checks a model survives a `.keras` file with safe mode.
`family_archs` lists the registered model families with the architectures each builds,
for tests parametrized over every family; `mixture_log_prob` is a Gaussian mixture's
density computed by hand; `InterruptAfter` stops training after an epoch is checkpointed;
`tf_config` describes a cluster of worker processes on 127.0.0.1 (with the scaling
benchmark's `free_ports`); `run_vae_tf` runs the command line in a child process, optionally
killed at a fault point; `ToySampler` is a data set of known factors whose images are the
factors themselves.
"""

import functools
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np

from vae_tf.models import registry
from vae_tf.models.factory import ARCHS, make_model


def _config_json(obj):
    """The serialized object without its compile state, which `from_config` does not carry."""
    serialized = keras.saving.serialize_keras_object(obj)
    serialized.pop("compile_config", None)
    return json.dumps(serialized, sort_keys=True, default=str)


def run_serialization_test(obj):
    """Serializes `obj` and deserializes it: same class, same config, in both directions.

    Returns:
        The rebuilt object.
    """
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert type(clone) is type(obj)
    assert _config_json(clone) == _config_json(obj)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(revived) is type(obj) and _config_json(revived) == _config_json(obj)
    return clone


def run_model_saving_test(model, outputs_of, tmp_path):
    """Saves `model` as `.keras`, reloads it with safe mode on and compares.

    Args:
        model: keras.Model.
        outputs_of: callable. model -> array of deterministic outputs to compare.
        tmp_path: Path. Where the file goes.

    Returns:
        The reloaded model.
    """
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    assert len(restored.weights) == len(model.weights)
    for saved, loaded in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded), err_msg=saved.path)
    np.testing.assert_allclose(np.asarray(outputs_of(restored)), np.asarray(outputs_of(model)), atol=1e-6)
    return restored


# The compiled training loop (vae_tf.models.loops.compiled_loop) against Keras's loop: XLA fuses
# and reorders float32 sums, so the numbers differ by rounding, measured up to 1.2e-5 in
# the weights of tests/test_benchmark.py's VAE (Adam) and 5.5e-5 relative in an IWAE's
# metrics after 3 epochs, against ~1e-3 in the weights for a step more or less.
WEIGHTS_ATOL, METRICS_RTOL = 3e-5, 1e-4


@functools.cache
def family_archs():
    """(kind, arch) for every registered family and every architecture it builds: a family
    with networks of its own may refuse one (VQ-VAE's grid of codes needs conv).

    Returns:
        A tuple of (kind, arch) pairs, in registry order.
    """
    def builds(kind, arch):
        family = registry.get(kind)
        if family.networks is None:  # vae_tf.core.networks build every architecture
            return True
        try:
            make_model(kind, arch, (4, 4, 1), 2, num_classes=2 if family.conditional else None,
                       hidden_units=(2,), filters=(2,))
        except ValueError:
            return False
        return True

    return tuple((kind, arch) for kind in registry.names() for arch in ARCHS if builds(kind, arch))


def one_arch_each():
    """(kind, arch) once per registered family, the architectures taken in turn: every family
    and every architecture covered at the cost of one case per family."""
    pairs = []
    for index, kind in enumerate(dict.fromkeys(k for k, _ in family_archs())):
        built = [arch for k, arch in family_archs() if k == kind]
        pairs.append((kind, built[index % len(built)]))
    return tuple(pairs)


def families(arch):
    """The registered families that build `arch` networks ("mlp" or "conv")."""
    return tuple(kind for kind, built in family_archs() if built == arch)


def mixture_log_prob(z, weights, means, variances):
    """log sum_k w_k N(z; mu_k, diag(var_k)) in float64 numpy."""
    z = np.asarray(z, "float64")[:, None, :]
    log_components = np.log(weights) - 0.5 * np.sum(
        np.log(2 * np.pi * variances) + (z - means) ** 2 / variances, axis=-1)
    top = log_components.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(log_components - top).sum(axis=1, keepdims=True)))[:, 0]


class InterruptAfter(keras.callbacks.Callback):
    """Raises KeyboardInterrupt once the given epoch has been checkpointed."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def tf_config(ports, index, chief=False):
    """The TF_CONFIG (a JSON string) of task `index` in a cluster of processes on
    127.0.0.1 at `ports`: all workers, or with `chief` the first one the chief."""
    addresses = [f"127.0.0.1:{port}" for port in ports]
    if not chief:
        return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
    task = {"type": "chief", "index": 0} if index == 0 else {"type": "worker", "index": index - 1}
    return json.dumps({"cluster": {"chief": addresses[:1], "worker": addresses[1:]}, "task": task})


ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_vae_tf(*argv, kill_at=None):
    """Runs `python -m vae_tf ARGV` to the end, with the fault injection point `kill_at`
    (`vae_tf.testing.faults`) if given; returns (exit status, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VAE_TF_TEST_KILL", None)
    if kill_at:
        env["VAE_TF_TEST_KILL"] = kill_at
    done = subprocess.run([sys.executable, "-m", "vae_tf", *argv], env=env, capture_output=True, text=True,
                          timeout=600)
    return done.returncode, done.stderr


class ToySampler:
    """Independent uniform factors of `SIZES` values; an image is the factor vector itself
    (shape (factors, 1, 1)), so the true factors are a perfect code."""

    SIZES = (3, 6, 10)
    num_factors = len(SIZES)

    def sample(self, num, rng):
        factors = np.stack([rng.integers(size, size=num) for size in self.SIZES], axis=1)
        return factors[:, :, None, None].astype("float32"), factors

    def sample_fixed(self, num, factor, rng):
        _, factors = self.sample(num, rng)
        factors[:, factor] = rng.integers(self.SIZES[factor])
        return factors[:, :, None, None].astype("float32"), factors
