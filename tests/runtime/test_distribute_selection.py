import numpy as np
import pytest
import tensorflow as tf

from vae_tf.runtime import distribute

CLUSTER = {"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]},
           "task": {"type": "worker", "index": 0}}


@pytest.mark.parametrize(
    "tf_config, num_gpus, expected",
    [
        (CLUSTER, 0, "multi_worker"),
        (CLUSTER, 2, "multi_worker"),
        ({}, 4, "mirrored"),
        ({}, 1, "one_device"),
        ({}, 0, "default"),
        ({"cluster": {"worker": ["127.0.0.1:2222"]}}, 0, "default"),  # one task is no cluster
    ],
)
def test_auto_picks_by_cluster_and_gpus(tf_config, num_gpus, expected):
    assert distribute.resolve("auto", tf_config=tf_config, num_gpus=num_gpus) == expected


def test_auto_reads_tf_config_from_the_environment(monkeypatch):
    import json

    monkeypatch.setenv("TF_CONFIG", json.dumps(CLUSTER))
    assert distribute.resolve("auto", num_gpus=0) == "multi_worker"
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.resolve("auto")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="auto, default, one_device, mirrored, multi_worker, tpu"):
        distribute.get_strategy("horovod")


def test_each_local_strategy_is_built():
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    assert distribute.get_strategy("auto").num_replicas_in_sync == 1  # no GPU, no cluster
    one = distribute.get_strategy("one_device")
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    mirrored = distribute.get_strategy("mirrored")  # the 2 logical CPUs of conftest
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2


def test_tpu_without_a_tpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no TPU found"):
        distribute.get_strategy("tpu")


def test_split_cpu_keeps_an_existing_split_and_refuses_late_changes():
    distribute.split_cpu(2)  # already split by conftest: nothing to do
    distribute.split_cpu(1)  # 1 means "do not split": the split stays
    assert len(tf.config.list_logical_devices("CPU")) == 2
    with pytest.raises(RuntimeError, match="already running"):
        distribute.split_cpu(3)
    with pytest.raises(ValueError, match="cpu_replicas"):
        distribute.split_cpu(0)
    assert np.isfinite(float(tf.reduce_sum(tf.ones(3))))
