"""`broadcast_from_chief` across two worker processes on 127.0.0.1: every worker ends
with the chief's model and optimizer state, bit for bit."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

from helpers import tf_config
from vae_tf.benchmarks.scaling import free_ports
from vae_tf.runtime.distribute import broadcast_from_chief

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 300

# Each worker builds the model from its own seed, so the two start apart; the chief then
# sets values no fresh worker has, as a restored checkpoint would.
WORKER = """
import hashlib, json
import numpy as np
import tensorflow as tf
import vae_tf
from vae_tf.runtime.distribute import broadcast_from_chief, get_strategy, is_chief

strategy = get_strategy("multi_worker")
chief = is_chief(strategy)
with strategy.scope():
    model = vae_tf.make_model("vae", "mlp", (28, 28, 1), 2, hidden_units=(32,), seed=1 if chief else 2)
    model.compile()
    model.optimizer.build(model.trainable_variables)
state = model.variables + model.optimizer.variables  # what a checkpoint holds
if chief:
    model.optimizer.iterations.assign(2**40 + 3)  # beyond 32 bits
odd = [np.array([-0.0, np.nan], "float32"), np.array([-2**63, 2**62 + 1]), tf.constant([1.5, -2.25], tf.bfloat16),
       np.array([True, False]), np.array([[3, 250]], "uint8")]
if not chief:
    odd = [tf.zeros_like(t) for t in odd]

def digest():
    return hashlib.sha256(b"".join(np.asarray(v).tobytes() for v in state)).hexdigest()

before = digest()
values = broadcast_from_chief(strategy, state + odd)
for variable, value in zip(state, values):
    variable.assign(value)
after = digest()
images = np.random.default_rng(0).random((64, 28, 28, 1), "float32")  # the same on both workers
model.fit(tf.data.Dataset.from_tensor_slices(images).batch(32), epochs=1, verbose=0)
print(json.dumps({"chief": chief, "before": before, "after": after, "trained": digest(),
                  "iterations": int(model.optimizer.iterations.numpy()),
                  "odd": [np.asarray(t).tobytes().hex() for t in values[len(state):]]}))
"""


def test_every_worker_takes_the_chiefs_state_bit_for_bit():
    ports = free_ports(2)
    processes = [
        subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": tf_config(ports, i, chief=True)})
        for i in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    for p, (out, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    chief, worker = (json.loads(out.splitlines()[-1]) for out, _ in outputs)
    assert chief["chief"] and not worker["chief"]
    assert chief["before"] != worker["before"]  # the chief's assignments stayed on the chief
    assert worker["after"] == chief["after"] == chief["before"]
    assert worker["trained"] == chief["trained"] != chief["after"]  # and training goes on from there together
    assert worker["iterations"] == chief["iterations"] == 2**40 + 3 + 2
    expected = ["00000080" "0000c07f", "0000000000000080" "0100000000000040", "c03f" "10c0", "0100", "03fa"]
    assert worker["odd"] == chief["odd"] == expected  # -0.0, NaN and int64 extremes untouched


def test_outside_a_cluster_the_tensors_come_back_unchanged(mirrored_strategy):
    values = [tf.constant([1.0, -0.0]), tf.constant([2**40], tf.int64)]
    for strategy in (tf.distribute.get_strategy(), mirrored_strategy):
        back = broadcast_from_chief(strategy, values)
        assert [t.numpy().tobytes() for t in back] == [t.numpy().tobytes() for t in values]


def test_a_string_tensor_is_refused_by_name():
    with pytest.raises(ValueError, match="numeric or bool tensors, got dtype string"):
        broadcast_from_chief(tf.distribute.get_strategy(), [tf.constant(["a"])])
