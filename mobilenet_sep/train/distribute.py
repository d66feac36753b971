"""tf.distribute strategies by name, for the training engine and the `--strategy` flag."""

import json
import os

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(name):
    """The strategy `name` names; create it before any other TensorFlow work in the process.

    mirrored: every GPU, or without GPUs every logical CPU device (configure several with
    `tf.config.set_logical_device_configuration` to try it on one machine).
    multi-worker: one process per worker, the cluster described by the TF_CONFIG variable.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [device.name for device in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices, None if gpus else tf.distribute.ReductionToOneDevice())
    if name == "multi-worker":
        try:
            cluster = json.loads(os.environ.get("TF_CONFIG", ""))["cluster"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                "multi-worker training needs TF_CONFIG describing the cluster and this task. "
                f"Received: TF_CONFIG={os.environ.get('TF_CONFIG')!r}"
            ) from None
        if not cluster:
            raise ValueError(f"TF_CONFIG names no workers. Received: TF_CONFIG={os.environ['TF_CONFIG']!r}")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={name!r}")


def worker_id(strategy):
    """'worker-1' for a multi-worker task, 'local' otherwise: names the scratch folder of a non-chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}-{resolver.task_id}"
