"""Multi-worker scaling on loopback: what the collective costs.

Two worker processes on this machine, each pinned to its own core (CPU affinity, as
`taskset -c 0` / `-c 1` does) with TensorFlow's intra- and inter-op thread pools set
to one thread, train one model with `MultiWorkerMirroredStrategy` through a `TF_CONFIG`
cluster on 127.0.0.1. They are compared with one process pinned to one core that trains
with the same global batch, so the speed-up is at most 2x; what is missing from 2x is
the cost of the all-reduce of the gradients every step, of the per-step synchronisation
and of each worker reading the whole input pipeline to keep its half of every batch.
"""

import json
import logging
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile

log = logging.getLogger(__name__)

EXAMPLES = 8192
TIMEOUT_S = 600


def measure(config, examples, epochs, batch_size, cpu, steps_per_execution=None, one_thread=True):
    """Trains one benchmark configuration in this process, pinned to core `cpu` with one
    TensorFlow thread per pool; under a `TF_CONFIG` cluster it is one of the workers.

    Must run in a fresh process, before TensorFlow has initialized.

    Args:
        config: str. A name from `vae_tf.benchmarks.throughput.CONFIGS`.
        examples: int. Training images (Fashion-MNIST's first, as in the benchmark).
        epochs: int. Timed epochs after one warm-up epoch.
        batch_size: int. The global batch.
        cpu: int. The core to run on.
        steps_per_execution: int or None. None: the project's default (32 on one
            device, 1 under a multi-replica strategy).
        one_thread: bool. Set TensorFlow's intra- and inter-op pools to one thread.
            Defaults to True.

    Returns:
        A JSON-ready dict: `images_per_s` (global images per second, median epoch),
        `replicas`, `steps_per_execution`, `load_average`.
    """
    os.sched_setaffinity(0, {cpu})
    import numpy as np
    import tensorflow as tf

    if one_thread:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from vae_tf.benchmarks.throughput import CONFIGS, IMAGE_SHAPE, EpochTimer, benchmark_images
    from vae_tf.data import training_pipelines
    from vae_tf.runtime.distribute import get_strategy, shard_by_data
    from vae_tf.models.factory import make_model

    strategy = get_strategy("auto")  # multi_worker under a TF_CONFIG cluster, else one device
    images, _ = benchmark_images(examples)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images), "int32")))
    train, _, _ = training_pipelines(dataset, batch_size, binarize="none", seed=0, cache=True)
    with strategy.scope():
        model = make_model(input_shape=IMAGE_SHAPE, seed=0, **CONFIGS[config])
        model.compile(steps_per_execution=steps_per_execution)
    timer = EpochTimer()
    model.fit(shard_by_data(train), epochs=1 + epochs, callbacks=[timer], verbose=0)
    return {"images_per_s": len(images) / statistics.median(timer.seconds[1:]),
            "replicas": strategy.num_replicas_in_sync,
            "steps_per_execution": int(model.steps_per_execution),
            "load_average": os.getloadavg()}


def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that are free now, for a cluster of worker processes."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_processes(jobs, scratch):
    """Runs `measure` in one new process per (arguments, TF_CONFIG or None); returns their results."""
    package_root = str(pathlib.Path(__file__).resolve().parent.parent)
    code = ("import json, sys; from vae_tf.benchmarks.scaling import measure; "
            "json.dump(measure(**json.loads(sys.argv[1])), open(sys.argv[2], 'w'))")
    processes, outputs = [], []
    try:
        for index, (arguments, tf_config) in enumerate(jobs):
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
            env.pop("TF_CONFIG", None)
            if tf_config is not None:
                env["TF_CONFIG"] = json.dumps(tf_config)
            outputs.append(pathlib.Path(scratch) / f"{index}.json")
            processes.append(subprocess.Popen(
                [sys.executable, "-c", code, json.dumps(arguments), str(outputs[-1])], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for process in processes:
            _, stderr = process.communicate(timeout=TIMEOUT_S)
            if process.returncode != 0:
                raise RuntimeError(f"scaling benchmark process failed: {stderr.strip().splitlines()[-1:]}")
    finally:
        for process in processes:  # whatever happened, no worker outlives the benchmark
            process.kill()
            process.wait()
    return [json.loads(path.read_text()) for path in outputs]


def run(config="mlp", examples=EXAMPLES, epochs=3, batch_size=128):
    """One process on one core, then two workers on two cores, with the same global batch.

    The single process runs twice: with the project's defaults (32 steps per execution)
    and with one step per execution, which is what the workers run (Keras cannot run
    several steps per execution under MultiWorkerMirroredStrategy).

    Args:
        config: str. A name from `vae_tf.benchmarks.throughput.CONFIGS`. Defaults to "mlp".
        examples: int. Training images. Defaults to 8192.
        epochs: int. Timed epochs after one warm-up epoch. Defaults to 3.
        batch_size: int. The global batch. Defaults to 128.

    Returns:
        A JSON-ready dict with the three measurements and the two speed-ups.
    """
    common = dict(config=config, examples=examples, epochs=epochs, batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="vae-tf-scaling-") as scratch:
        log.info("scaling %s: one process on core 0", config)
        (one,) = _run_processes([(dict(common, cpu=0), None)], scratch)
        (one_step,) = _run_processes([(dict(common, cpu=0, steps_per_execution=1), None)], scratch)
        log.info("scaling %s: two workers on cores 0 and 1", config)
        workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
        cluster = [(dict(common, cpu=index), {"cluster": {"worker": workers},
                                              "task": {"type": "worker", "index": index}})
                   for index in range(2)]
        chief, _ = _run_processes(cluster, scratch)
    return {"config": config, "examples": examples, "batch_size": batch_size, "timed_epochs": epochs,
            "one_process": one, "one_process_one_step": one_step, "two_workers": chief,
            "speedup": chief["images_per_s"] / one["images_per_s"],
            "speedup_same_steps": chief["images_per_s"] / one_step["images_per_s"]}


def format_table(results):
    """The results of several `run`s (a list) as a plain-text table."""
    lines = [f"{'config':<6} {'batch':>5} {'1 core img/s':>12} {'(1 step/exec)':>13} "
             f"{'2 workers img/s':>15} {'speed-up':>8} {'(same steps)':>12} {'load':>5}"]
    for r in results:
        lines.append(f"{r['config']:<6} {r['batch_size']:>5} {r['one_process']['images_per_s']:>12.0f} "
                     f"{r['one_process_one_step']['images_per_s']:>13.0f} "
                     f"{r['two_workers']['images_per_s']:>15.0f} {r['speedup']:>7.2f}x "
                     f"{r['speedup_same_steps']:>11.2f}x {r['two_workers']['load_average'][0]:>5.2f}")
    return "\n".join(lines)
