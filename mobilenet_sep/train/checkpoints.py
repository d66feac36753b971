"""A run's checkpoints: TF CheckpointManager files in `checkpoints/`, the last two kept, safe under kill -9.

The write protocol: TensorFlow writes each file of a checkpoint under a temporary name and renames
it into place; before the manager records the new checkpoint in its state file (`checkpoint`,
itself replaced by a rename) the files are fsynced, and the state file and folder after it. So a
kill at any moment leaves the state file naming complete checkpoints only: the previous ones, or
the new one too. A checkpoint damaged afterwards (a truncated copy, a bad disk) is found on resume
by reading every tensor back, checksums included; the run then goes on from the one before it.
"""

import os

STATE = "checkpoint"
"""The manager's state file: which checkpoints exist, newest last."""

LEFTOVER_MARKS = (".tempstate", "_temp", ".tmp")
"""What TensorFlow's temporary names contain (tensor bundles, sharded saves, the state file):
what a killed write leaves behind."""


def _fsync(path):
    """Flush a file (or folder: its entries) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_files(prefix):
    """fsync the files of the checkpoint at `prefix` (its index and data shards) and their folder."""
    folder, name = os.path.split(prefix)
    for entry in os.listdir(folder):
        if entry == f"{name}.index" or entry.startswith(f"{name}.data-"):
            _fsync(os.path.join(folder, entry))
    _fsync(folder)


class Checkpoints:
    """The checkpoints of one run in `folder`: `save(number)` per epoch, the last two kept."""

    def __init__(self, checkpoint, folder: str):
        import tensorflow as tf

        self.folder = folder
        self.manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=2)

    def save(self, number: int) -> str:
        """Write checkpoint `number`; it counts once the state file names it, after its files are on disk."""
        import tensorflow as tf

        # Callbacks run in order and the manager appends its own (which records the state) after ours.
        options = tf.train.CheckpointOptions(experimental_write_callbacks=[_fsync_files])
        path = self.manager.save(checkpoint_number=number, options=options)
        _fsync(os.path.join(self.folder, STATE))
        _fsync(self.folder)
        return path


def remove_leftovers(folder: str) -> list[str]:
    """Delete what killed checkpoint writes left in `folder` (temporary files and folders); their names."""
    import shutil

    if not os.path.isdir(folder):
        return []
    removed = []
    for entry in sorted(os.listdir(folder)):
        if any(mark in entry for mark in LEFTOVER_MARKS):
            path = os.path.join(folder, entry)
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
            removed.append(entry)
    return removed


def damage(path: str) -> str | None:
    """Why the checkpoint at `path` does not read back whole, in one line; None when every tensor does."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)  # reads the bytes and checks their checksum
    except (tf.errors.OpError, IndexError, ValueError, OSError) as error:
        return " ".join(str(error).split())[:200] or type(error).__name__
    return None


def listed(folder: str) -> list[str]:
    """The checkpoints in `folder`, newest first: those its state file names, or, when the state file
    is missing or does not parse, every `ckpt-N` with an index file."""
    import tensorflow as tf

    try:
        state = tf.train.get_checkpoint_state(folder)  # None when missing or unparsable
    except ValueError:  # a state file naming no checkpoint
        state = None
    if state is not None:
        paths = {*state.all_model_checkpoint_paths, state.model_checkpoint_path}
    elif os.path.isdir(folder):
        paths = {os.path.join(folder, entry.removesuffix(".index")) for entry in os.listdir(folder)}
        paths = {path for path in paths if os.path.isfile(f"{path}.index")}
    else:
        paths = set()
    return sorted(paths, key=_number, reverse=True)


def _number(path):
    suffix = path.rpartition("-")[2]
    return int(suffix) if suffix.isdigit() else -1


def newest_intact(folder: str, notice=lambda message: None) -> str | None:
    """The newest checkpoint in `folder` that reads back whole; each damaged newer one is reported to
    `notice` in one line. None when there is none (a fresh run)."""
    candidates = listed(folder)
    for index, path in enumerate(candidates):
        reason = damage(path)
        if reason is None:
            return path
        following = candidates[index + 1] if index + 1 < len(candidates) else None
        then = f"resuming from {os.path.basename(following)}" if following else "starting from scratch"
        notice(f"checkpoint {os.path.basename(path)} is damaged ({reason}); {then}")
    return None
