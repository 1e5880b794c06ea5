"""Device placement through tf.distribute: strategy selection by name."""

import json
import logging
import os

import tensorflow as tf

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")


def split_cpu(replicas):
    """Splits the CPU into `replicas` logical devices so `mirrored` can use them.

    Must run before TensorFlow initializes its devices (before any op runs). Asking
    for 1, or for the split already in place, leaves the devices as they are.

    Args:
        replicas: int. Number of logical CPU devices, >= 1.
    """
    if not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"cpu_replicas must be an integer >= 1, got {replicas}")
    if replicas == 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if len(current or [None]) == replicas:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * replicas
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"cannot split the CPU into {replicas} devices: TensorFlow is already running"
        ) from error


def _cluster_size(tf_config):
    cluster = tf_config.get("cluster", {})
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker"))


def resolve(name="auto", tf_config=None, num_gpus=None):
    """Returns the concrete strategy name that `name` stands for on this machine.

    `auto` picks `multi_worker` when TF_CONFIG describes a cluster of several tasks,
    `mirrored` with more than one GPU, `one_device` with one GPU, else `default`.

    Args:
        name: str. One of `STRATEGIES`.
        tf_config: dict or None. The cluster description; None reads $TF_CONFIG.
        num_gpus: int or None. None counts the visible GPUs.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name != "auto":
        return name
    if tf_config is None:
        try:
            tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON ({error})") from error
    if _cluster_size(tf_config) > 1:
        return "multi_worker"
    if num_gpus is None:
        num_gpus = len(tf.config.list_physical_devices("GPU"))
    if num_gpus > 1:
        return "mirrored"
    return "one_device" if num_gpus == 1 else "default"


def get_strategy(name="auto"):
    """Returns a `tf.distribute.Strategy` by name.

    Args:
        name: str. "auto", "default", "one_device", "mirrored" (all GPUs, else all
            logical CPUs from `split_cpu`), "multi_worker" (driven by TF_CONFIG) or
            "tpu". Defaults to "auto".

    Returns:
        The strategy; build and compile models inside its `scope()`.

    Example:

    >>> strategy = get_strategy("mirrored")
    >>> with strategy.scope():
    ...     model = make_model("vae", "mlp", (28, 28, 1), 20); model.compile()
    """
    concrete = resolve(name)
    if concrete == "multi_worker":  # before anything initializes TensorFlow's devices
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif concrete == "default":
        strategy = tf.distribute.get_strategy()
    elif concrete == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        strategy = tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    elif concrete == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise ValueError(f"strategy 'tpu': no TPU found ({error})") from error
        strategy = tf.distribute.TPUStrategy(resolver)
    log.info("strategy: %s (%s) with %d replica(s)", concrete, type(strategy).__name__,
             strategy.num_replicas_in_sync)
    return strategy


def is_distributed(strategy):
    """Whether `strategy` is a tf.distribute strategy, not TensorFlow's default one
    (which places nothing and wraps nothing), whatever its number of replicas."""
    return tf.distribute.has_strategy() or strategy is not tf.distribute.get_strategy()


def spans_workers(strategy):
    """Whether `strategy` trains across several worker processes."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if getattr(resolver, "task_type", None) is None:
        return False
    return _cluster_size({"cluster": resolver.cluster_spec().as_dict()}) > 1


def is_chief(strategy):
    """Whether this process writes a run's artefacts: True except on the non-chief
    workers of a multi-worker cluster (the chief, else worker 0, is the writer)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type is None:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (task_type == "worker" and not has_chief and resolver.task_id == 0)


def any_worker(strategy, flag):
    """Whether `flag` (a bool) holds on any worker of `strategy`: one SUM all-reduce of the
    votes across workers (tf.distribute reduces by SUM or MEAN only); `flag` itself on one
    process. Every worker must call it at the same point of training, as with any collective.

    Example:

    >>> any_worker(tf.distribute.get_strategy(), True)
    True
    """
    if not spans_workers(strategy):
        return bool(flag)
    votes = strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
    return bool(strategy.reduce("SUM", votes, axis=None) > 0)


def _as_words(tensor):
    """`tensor`'s bits as a flat int32 vector (a 1- or 2-byte element widened to a word)."""
    size = tensor.dtype.size
    if size in (4, 8):
        return tf.reshape(tf.bitcast(tensor, tf.int32), [-1])
    if size == 2:
        return tf.reshape(tf.cast(tf.bitcast(tensor, tf.int16), tf.int32), [-1])
    return tf.reshape(tf.cast(tensor, tf.int32), [-1])  # bool, int8, uint8: the value is the bits


def _from_words(words, like):
    """The inverse of `_as_words`: a tensor shaped and typed like `like`."""
    size = like.dtype.size
    if size == 8:
        words = tf.bitcast(tf.reshape(words, [-1, 2]), like.dtype)
    elif size == 4:
        words = tf.bitcast(words, like.dtype)
    elif size == 2:
        words = tf.bitcast(tf.cast(words, tf.int16), like.dtype)
    else:
        words = tf.cast(words, like.dtype)
    return tf.reshape(words, like.shape)


def broadcast_from_chief(strategy, tensors):
    """The chief's values of `tensors` on every worker, bit for bit.

    A variable assigned outside `strategy.run` under MultiWorkerMirroredStrategy changes
    on this worker alone, so a value only the chief holds (a restored checkpoint) must
    travel. All `tensors` go as one int32 vector through one all-reduce (SUM), to which
    the chief's first replica adds their bits and every other replica zeros: integer
    addition of zeros keeps every bit (int64 counters and seeds, -0.0, NaN), where
    a float sum would not. Outside a multi-worker cluster they come back unchanged.

    Args:
        strategy: tf.distribute.Strategy. Every worker of the cluster calls this together.
        tensors: list of tensors or variables, the same dtypes and shapes on every worker
            (the values of a non-chief are ignored). Any numeric or bool dtype.

    Returns:
        A list of eager tensors: the chief's values, in order.

    Example:

    >>> values = broadcast_from_chief(strategy, model.variables)
    >>> for variable, value in zip(model.variables, values):
    ...     variable.assign(value)
    """
    tensors = [tf.convert_to_tensor(t) for t in tensors]
    unsupported = [t.dtype.name for t in tensors if t.dtype.size not in (1, 2, 4, 8)]
    if unsupported:
        raise ValueError(f"broadcast_from_chief takes numeric or bool tensors, got dtype {unsupported[0]}")
    if not spans_workers(strategy) or not tensors:
        return tensors
    words = [_as_words(t) for t in tensors]
    packed = tf.concat(words, 0)
    local_replicas = len(strategy.extended.worker_devices)
    chief = is_chief(strategy)

    def contribution(context):  # MWMS numbers each worker's replicas consecutively
        first_here = context.replica_id_in_sync_group % local_replicas == 0
        return packed if chief and first_here else tf.zeros_like(packed)

    total = strategy.reduce(tf.distribute.ReduceOp.SUM,
                            strategy.experimental_distribute_values_from_function(contribution), axis=None)
    parts = tf.split(total, [int(w.shape[0]) for w in words])
    return [_from_words(part, like) for part, like in zip(parts, tensors)]


def shard_by_data(dataset):
    """Shards `dataset` by element across workers (files cannot shard in-memory data)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def endless(dataset):
    """(`dataset.repeat()`, batches per pass) for a `tf.data.Dataset` of known finite
    length; anything else comes back as (it, None).

    Given a finite dataset, Keras makes a new iterator every epoch. Under a strategy
    that is a distributed iterator, whose first step across workers waited up to 4 s
    here, more than the 64 steps of an epoch took (README, Performance). A repeated
    dataset with `steps_per_epoch` equal to its length is read through one iterator
    for the whole `fit`: each pass is one epoch, reshuffled as a new iterator would be.
    """
    if not isinstance(dataset, tf.data.Dataset):
        return dataset, None
    length = int(dataset.cardinality())
    if length <= 0:  # unknown, infinite or empty: as given
        return dataset, None
    return dataset.repeat(), length
