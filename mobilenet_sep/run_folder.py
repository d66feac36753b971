"""The output folder of a training run: what is in it, atomic writes, TensorBoard scalars.

Every file lands whole (through `files`: written under a temporary name, then renamed) so a run
killed at any moment leaves the previous version of each file intact, and a run that refuses its
input (a checkpoint of another model, say) has written nothing at all.
"""

import json
import os
import tempfile

from mobilenet_sep import files

CHECKPOINTS, LOGS = "checkpoints", "logs"
BEST, FINAL, METRICS, RECIPE = "best.keras", "final.keras", "metrics.json", "recipe.json"
FINGERPRINT = (("model",), ("data", "dataset"), ("finetune", "weights"))
"""What a checkpoint must share with the recipe resuming it: same model, same data, same start."""


def fingerprint(recipe):
    """The parts of a recipe a resumed run must share with the checkpoint's."""
    return {"/".join(path): recipe[path[0]] if len(path) == 1 else recipe[path[0]][path[1]] for path in FINGERPRINT}


def write_json(path, data):
    """Write JSON atomically."""
    files.write_atomically({path: json.dumps(data, indent=1)})


def read_json(path):
    """The JSON in `path`, or None when it is missing or unreadable."""
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def check_writable(output_dir):
    """Prove the folder (or, while it does not exist, its nearest existing parent) writable; change nothing."""
    existing = os.path.abspath(output_dir)
    while not os.path.exists(existing):  # the root exists: the loop ends
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise NotADirectoryError(20, f"{existing} is a file")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"Output directory is not writable ({error.strerror}). Received: out={output_dir!r}") from None
    return output_dir


def check_same_run(output_dir, recipe):
    """A checkpoint in `output_dir` made from another model or data is an error, before anything is written."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(os.path.join(output_dir, CHECKPOINTS))
    saved = read_json(os.path.join(output_dir, RECIPE))
    if latest and saved and saved.get("fingerprint") != fingerprint(recipe):
        differences = [key for key, value in fingerprint(recipe).items() if saved["fingerprint"].get(key) != value]
        raise ValueError(
            f"The output directory holds a checkpoint of another run ({', '.join(differences)} differ); "
            f"use another --out or delete it. Received: out={output_dir!r}"
        )
    return latest


def save_model(model, path):
    """Save a .keras file atomically, every layer trainable (whatever phase fine-tuning is in)."""
    flags = [(layer, layer.trainable) for layer in model.layers]
    for layer, _ in flags:
        layer.trainable = True
    try:
        with files.atomic_path(path) as temporary:
            model.save(temporary)
    finally:
        for layer, trainable in flags:
            layer.trainable = trainable
    return path


class ScalarLog:
    """TensorBoard scalars (the chief's `logs/train` and `logs/test`), written without the tensorboard package."""

    TRAIN = ("loss", "top1", "learning_rate", "images_per_second")
    TEST = ("test_loss", "test_top1", "test_top5")

    def __init__(self, folder, enabled):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._metadata = summary_pb2.SummaryMetadata()
        self._metadata.plugin_data.plugin_name = "scalars"
        self._writers = {
            part: tf.summary.create_file_writer(os.path.join(folder, part))
            if enabled
            else tf.summary.create_noop_writer()
            for part in ("train", "test")
        }

    def write(self, record):
        import tensorflow as tf

        for part, keys in (("train", self.TRAIN), ("test", self.TEST)):
            with self._writers[part].as_default():
                for key in keys:
                    if key in record:
                        tag = key.removeprefix("test_")
                        tf.summary.write(tag, tf.constant(record[key], tf.float32), record["epoch"], self._metadata)
            self._writers[part].flush()
