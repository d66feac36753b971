"""The output folder of a training run: what is in it, its lock, atomic writes, TensorBoard scalars.

Every file lands whole (through `files`: written under a temporary name, then renamed) so a run
killed at any moment leaves the previous version of each file intact, and a run that refuses its
input (a checkpoint of another model, say) has written nothing at all. One run at a time writes
into a folder: it holds the folder's lock file while it works.
"""

import contextlib
import fcntl
import json
import os
import tempfile

from mobilenet_sep.train import checkpoints
from mobilenet_sep.utils import files

CHECKPOINTS, LOGS = "checkpoints", "logs"
BEST, FINAL, METRICS, RECIPE = "best.keras", "final.keras", "metrics.json", "recipe.json"
LOCK = "train.lock"
"""Holds the pid of the run writing into the folder; locked with flock, which the kernel releases
when that process ends, however it ends: the lock file of a killed run is stale and taken over."""
TEMPORARY_PREFIX = ".tmp-"
"""The names `files` writes under before renaming (see `files.atomic_path`): leftovers of a kill."""
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
    saved = read_json(os.path.join(output_dir, RECIPE))
    if checkpoints.listed(os.path.join(output_dir, CHECKPOINTS)) and saved:
        recorded = saved.get("fingerprint", {})
        differences = [key for key, value in fingerprint(recipe).items() if recorded.get(key) != value]
        if differences:
            raise ValueError(
                f"The output directory holds a checkpoint of another run ({', '.join(differences)} differ); "
                f"use another --out or delete it. Received: out={output_dir!r}"
            )


def _open_locked(path, output_dir):
    """The lock file at `path`, opened and flocked by this process; ValueError naming the live holder."""
    while True:
        handle = open(path, "a+")  # noqa: SIM115  (held open for the whole run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise ValueError(
                f"Another train run (pid {holder}) is writing into this folder; wait for it to end or use "
                f"another --out. Received: out={output_dir!r}"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
                return handle
        handle.close()  # a run ending meanwhile removed the file we locked: lock the new one


@contextlib.contextmanager
def locked(output_dir, notice=lambda message: None):
    """Hold `output_dir`'s lock while the block runs (created if missing, the pid written into it).

    A second run into the folder while the holder lives raises ValueError in one line; the lock
    file of a run that was killed is taken over (and `notice` told). On the way out the lock file
    goes, and so do folders made here that stayed empty: a refused run leaves nothing behind.
    """
    made = []
    folder = os.path.abspath(output_dir)
    while not os.path.isdir(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOCK)
    handle = None
    try:
        handle = _open_locked(path, output_dir)
        handle.seek(0)
        previous = handle.read().strip()
        if previous and previous != str(os.getpid()):
            notice(f"took over the lock of pid {previous}, which is no longer running")
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        if handle is not None:
            os.remove(path)
            handle.close()
        for created in made:
            with contextlib.suppress(OSError):  # not empty: the run wrote its files
                os.rmdir(created)


def remove_leftovers(output_dir):
    """Delete the temporary files killed writes left (ours, TensorFlow's checkpoint ones); hold the lock."""
    for entry in os.listdir(output_dir):
        if entry.startswith(TEMPORARY_PREFIX) and os.path.isfile(os.path.join(output_dir, entry)):
            os.remove(os.path.join(output_dir, entry))
    checkpoints.remove_leftovers(os.path.join(output_dir, CHECKPOINTS))


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
