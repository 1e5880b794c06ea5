"""Speed and memory, measured in one run so the ratios mean something on a noisy machine.

For each configuration (`mlp`, `conv`), each variant in its own process: training
images/s with the project's defaults (`vae-tf train`'s dtype policy and `compile()`),
with float32 and plain `compile` defaults, and with the defaults in the other precision
(where the machine supports mixed precision); the analytic training FLOPs per image, the
achieved GFLOP/s and the machine's float32 matmul GFLOP/s measured just before. Then the serving
latency and throughput of the exported SavedModel, and the peak resident memory.
"""

import json
import logging
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from vae_tf.data import DEBIAN_FASHION_MNIST, has_idx_files, load_idx_directory, training_pipelines
from vae_tf.serving.export import export_saved_model
from vae_tf.models.factory import make_model
from vae_tf.runtime.precision import dtype_policy, mixed_policy_name, policy_name

log = logging.getLogger(__name__)

BATCH_SIZE = 128
# The tutorials' MLP VAE, and the canonical Keras-example convolutional VAE shape.
CONFIGS = {
    "mlp": dict(kind="vae", arch="mlp", latent_dim=20, hidden_units=(400,)),
    "conv": dict(kind="vae", arch="conv", latent_dim=2, filters=(32, 64), dense_units=16),
}
IMAGE_SHAPE = (28, 28, 1)
# `compile` as a plain Keras user writes it, defaults spelled out: Keras's Adam (learning
# rate 1e-3), no XLA on a CPU, one step per execution.
PLAIN_COMPILE = dict(optimizer="adam", jit_compile=False, steps_per_execution=1)


def matmul_gflops(size=2048, seconds=1.0):
    """The machine's float32 matmul rate: 2·n³ FLOPs per `tf.linalg.matmul` of n×n."""
    a = tf.random.stateless_normal((size, size), seed=(1, 2))
    b = tf.random.stateless_normal((size, size), seed=(3, 4))
    product = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    product().numpy()  # warm up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product().numpy()
        calls += 1
    return 2 * size**3 * calls / (time.perf_counter() - start) / 1e9


def forward_flops(network):
    """Multiply-add FLOPs (2 per MAC) of one example through the Dense and conv layers."""
    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            height, width, _ = layer.input.shape[1:]
            total += 2 * height * width * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Conv2D):
            height, width, _ = layer.output.shape[1:]
            total += 2 * height * width * int(np.prod(layer.kernel.shape))
    return total


def training_flops_per_image(model):
    """3 × the forward FLOPs of encoder and decoder: forward, input and weight gradients."""
    return 3 * (forward_flops(model.encoder) + forward_flops(model.decoder))


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def benchmark_images(examples=None):
    """(images, source): Fashion-MNIST training images from the Debian package when it
    is installed, else random images of the same shape; the first `examples` if given."""
    if has_idx_files(DEBIAN_FASHION_MNIST):
        (images, _), _ = load_idx_directory(DEBIAN_FASHION_MNIST)
        source = f"Fashion-MNIST ({DEBIAN_FASHION_MNIST})"
    else:
        images, source = np.random.default_rng(0).random((60_000, *IMAGE_SHAPE), dtype=np.float32), "random"
    return images[:examples], source


def training_throughput(model, images, epochs, compile_options):
    """Median images/s over `epochs` timed epochs after one warm-up epoch, through the
    project's training pipeline as `vae-tf train` reads it (the images in memory,
    batches of shuffled indices, one `fit` per epoch, each timed whole; see
    `data.training_pipelines`): a compiled training loop gathers the batches itself,
    Keras's loop reads them through tf.data; `model` is compiled with
    `compile_options` ({} for the project's defaults)."""
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images), "int32")))
    _, _, indexed_epoch = training_pipelines(dataset, BATCH_SIZE, binarize="none", seed=0, cache=True,
                                             in_memory=True)
    model.compile(**compile_options)
    seconds = []
    for epoch in range(1 + epochs):
        start = time.perf_counter()
        model.fit(indexed_epoch(epoch), initial_epoch=epoch, epochs=epoch + 1, verbose=0)
        seconds.append(time.perf_counter() - start)
    return len(images) / statistics.median(seconds[1:])


def serving_latency(model, calls=1000, batch=1024):
    """Latency of the SavedModel's `decode` and `encode` signatures at batch 1 (p50 and
    p99 over `calls` calls after a warm-up) and their throughput at batch `batch`."""
    results = {}
    with tempfile.TemporaryDirectory() as root:
        served = tf.saved_model.load(str(export_saved_model(model, root, name="bench")))
        inputs = {
            "decode": lambda n: {"z": tf.zeros((n, model.latent_dim))},
            "encode": lambda n: {"images": tf.zeros((n, *IMAGE_SHAPE))},
        }
        for name, make in inputs.items():
            signature, one, many = served.signatures[name], make(1), make(batch)
            for _ in range(50):
                signature(**one)
            seconds = []
            for _ in range(calls):
                start = time.perf_counter()
                signature(**one)
                seconds.append(time.perf_counter() - start)
            signature(**many)
            start, repeats = time.perf_counter(), 20
            for _ in range(repeats):
                signature(**many)
            results[name] = {
                "p50_ms": 1e3 * float(np.percentile(seconds, 50)),
                "p99_ms": 1e3 * float(np.percentile(seconds, 99)),
                "batch": batch,
                "batch_images_per_s": batch * repeats / (time.perf_counter() - start),
            }
    return results


def peak_rss_mib():
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def measure(name, variant="defaults", epochs=3, examples=None):
    """Times one configuration of `CONFIGS` in one of its variants.

    Args:
        name: str. A key of `CONFIGS`.
        variant: str. "defaults": what `vae-tf train` does (its dtype policy,
            `precision.policy_name`, and `compile()`'s defaults); "plain": float32 and
            `PLAIN_COMPILE`; "other": the defaults in the other precision (float32 where
            the defaults are mixed, else mixed where the machine supports it).
        epochs, examples: as in `run`.

    Returns:
        A JSON-ready dict: images/s (None for "other" where there is no other precision),
        the dtype policy, whether the loop was compiled, peak memory; for "defaults"
        also the analytic FLOPs per image and the matmul rate measured just before.
    """
    images, _ = benchmark_images(examples)
    policy = policy_name(None, convolutional=CONFIGS[name]["arch"] == "conv")
    options = {}
    if variant == "plain":
        policy, options = "float32", PLAIN_COMPILE
    elif variant == "other":
        try:
            policy = "float32" if policy != "float32" else mixed_policy_name()
        except ValueError:  # no GPU and no bfloat16 instructions: float32 only
            return {"policy": None, "images_per_s": None}
    with dtype_policy(policy):
        model = make_model(input_shape=IMAGE_SHAPE, seed=0, **CONFIGS[name])
    result = {"policy": policy}
    if variant == "defaults":
        result.update(flops_per_image=training_flops_per_image(model), matmul_gflops=matmul_gflops())
    log.info("%s: timing the %s (%s)", name, variant, policy)
    result["images_per_s"] = training_throughput(model, images, epochs, options)
    result.update(compiled_loop=bool(model.compiles_training_loop), peak_rss_mib=peak_rss_mib())
    return result


VARIANTS = ("defaults", "plain", "other")


def compare(name, epochs=3, examples=None, repeats=1):
    """The variants of `measure`, each in a new process, in `repeats` rounds (defaults,
    plain, other; then again): a machine whose speed drifts or jumps between processes
    shifts every variant of a round alike. Returns the JSON-ready dict of the defaults'
    process of the first round with the medians over the rounds, the ratios of the
    medians, and every round's images/s (`rounds`)."""
    rounds = [{variant: in_fresh_process("vae_tf.benchmarks.throughput:measure", name=name, variant=variant,
                                         epochs=epochs, examples=examples) for variant in VARIANTS}
              for _ in range(repeats)]

    def median(variant):
        values = [r[variant]["images_per_s"] for r in rounds]
        return None if None in values else statistics.median(values)

    defaults, plain, other = (median(variant) for variant in VARIANTS)
    first = rounds[0]["defaults"]
    gflops = defaults * first["flops_per_image"] / 1e9
    return {
        **first,
        "images_per_s": defaults,
        "gflops": gflops,
        "ratio_to_matmul": gflops / first["matmul_gflops"],
        "plain_images_per_s": plain,
        "plain_ratio_to_matmul": plain * first["flops_per_image"] / 1e9 / first["matmul_gflops"],
        "speedup_over_plain": defaults / plain,
        "other_policy": rounds[0]["other"]["policy"],
        "other_images_per_s": other,
        "rounds": [{variant: r[variant]["images_per_s"] for variant in VARIANTS} for r in rounds],
    }


def in_fresh_process(function, **kwargs):
    """Calls `function` (a "module:name" of this package) with `kwargs` in a new Python
    process and returns its JSON result: peak memory is per process, and a model trained
    earlier in the same process changed later speeds (a bfloat16 conv VAE trained at half
    its speed after a float32 one; README, Performance).

    Raises:
        RuntimeError: the process failed; the message ends with its last error line.
    """
    module, name = function.split(":")
    package_root = str(pathlib.Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    code = (f"import json, sys; from {module} import {name}; "
            f"json.dump({name}(**json.loads(sys.argv[1])), open(sys.argv[2], 'w'))")
    with tempfile.TemporaryDirectory(prefix="vae-tf-benchmark-") as scratch:
        out = pathlib.Path(scratch) / "result.json"
        done = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs), str(out)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"benchmark {function}({kwargs}) failed: {done.stderr.strip().splitlines()[-1:]}")
        return json.loads(out.read_text())


def run(epochs=3, examples=None, configs=tuple(CONFIGS), serving_calls=1000, repeats=1):
    """Runs the whole benchmark, each configuration and variant in a new process
    (`compare`); returns the results as a JSON-ready dict.

    Args:
        epochs: int. Timed epochs per configuration, after one warm-up epoch.
        examples: int or None. Train on the first `examples` images; None for all.
        configs: names from `CONFIGS`.
        serving_calls: int. Batch-1 calls per signature for the latency percentiles.
        repeats: int. Rounds of the variants per configuration; the medians are reported.
    """
    images, source = benchmark_images(examples)
    results = {"machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "tensorflow": tf.__version__,
                           "keras": keras.__version__, "data": source, "examples": len(images),
                           "batch_size": BATCH_SIZE, "timed_epochs": epochs, "repeats": repeats}}
    for name in configs:
        results[name] = compare(name, epochs, examples, repeats)
    if "mlp" in configs:  # latency does not depend on the weights: an untrained model serves
        served = make_model(input_shape=IMAGE_SHAPE, seed=0, **CONFIGS["mlp"])
        results["serving"] = {"model": "mlp", **serving_latency(served, calls=serving_calls)}
    return results


def format_table(results):
    """The results as a plain-text table."""
    machine = results["machine"]
    short = {"float32": "fp32", "mixed_bfloat16": "bf16", "mixed_float16": "fp16", None: "-"}
    lines = [f"{machine['cpus']} CPUs ({machine['cpu_model']}), TensorFlow {machine['tensorflow']}, "
             f"Keras {machine['keras']}; {machine['examples']} images of {machine['data']}, "
             f"batch {machine['batch_size']}, median of {machine['timed_epochs']} epochs"
             + (f"; medians of {machine['repeats']} rounds" if machine.get("repeats", 1) > 1 else ""),
             "",
             f"{'config':<6} {'images/s':>9} {'dtype':>5} {'MFLOP/img':>10} {'GFLOP/s':>8} {'matmul':>7} "
             f"{'of matmul':>9} {'plain img/s':>11} {'speed-up':>8} {'other precision':>15} "
             f"{'peak RSS':>9}"]
    for name in CONFIGS:
        if name in results:
            r = results[name]
            other = "-" if r["other_images_per_s"] is None else \
                f"{short[r['other_policy']]} {r['other_images_per_s']:.0f}"
            lines.append(
                f"{name:<6} {r['images_per_s']:>9.0f} {short[r['policy']]:>5} {r['flops_per_image'] / 1e6:>10.2f} "
                f"{r['gflops']:>8.1f} {r['matmul_gflops']:>7.1f} {r['ratio_to_matmul']:>9.0%} "
                f"{r['plain_images_per_s']:>11.0f} {r['speedup_over_plain']:>7.2f}x "
                f"{other:>15} {r['peak_rss_mib']:>6.0f} MiB")
    loops = [f"{name} {'compiled (one XLA program per execution)' if results[name]['compiled_loop'] else 'Keras'}"
             for name in CONFIGS if name in results]
    lines.append(f"training loop of the defaults: {', '.join(loops)}")
    lines.append("dtype: the defaults' precision (vae-tf train's); plain: float32, Keras's compile "
                 "defaults; other precision: the defaults in the other precision; each in its own process")
    if "serving" in results:
        lines.append("")
        lines.append("SavedModel serving (mlp):")
        for name in ("decode", "encode"):
            r = results["serving"][name]
            lines.append(f"  {name:<7} batch 1: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms; "
                         f"batch {r['batch']}: {r['batch_images_per_s']:,.0f} images/s")
    return "\n".join(lines)
