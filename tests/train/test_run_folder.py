"""A training run's folder: atomic files, its lock, the same-run check, .keras saving and TensorBoard scalars."""

import os
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mobilenet_sep.train.engine import run_folder
from mobilenet_sep.train.recipe import check_recipe


def test_json_files_are_written_whole_and_read_leniently(tmp_path):
    path = str(tmp_path / "metrics.json")
    run_folder.write_json(path, {"top1": 0.5, "history": [1, 2]})
    run_folder.write_json(path, {"top1": 0.75})
    assert run_folder.read_json(path) == {"top1": 0.75}
    assert os.listdir(tmp_path) == ["metrics.json"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # an ordinary file, readable by others
    (tmp_path / "broken.json").write_text("{not json")
    assert run_folder.read_json(str(tmp_path / "broken.json")) is None
    assert run_folder.read_json(str(tmp_path / "absent.json")) is None


def test_writability_is_checked_without_creating_anything(tmp_path):
    assert run_folder.check_writable(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
    assert not os.listdir(tmp_path)  # the parent that exists was probed, nothing was made
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="Output directory is not writable.*Received: out='.*file/run'"):
        run_folder.check_writable(str(tmp_path / "file" / "run"))
    with pytest.raises(ValueError, match="Output directory is not writable.*Received: out='.*file'"):
        run_folder.check_writable(str(tmp_path / "file"))
    assert os.listdir(tmp_path) == ["file"]


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    recipe = check_recipe({"model": {"name": "mobilenet_v1_0.25_128", "alpha": 0.5}})
    folder = str(tmp_path)
    other = check_recipe({**recipe, "model": {**recipe["model"], "alpha": 1.0}, "data": {"dataset": "tfds:mnist"}})
    run_folder.write_json(os.path.join(folder, run_folder.RECIPE), {"fingerprint": run_folder.fingerprint(recipe)})
    run_folder.check_same_run(folder, other)  # a recipe record but no checkpoint yet: nothing to protect
    tf.train.Checkpoint(value=tf.Variable(1.0)).save(os.path.join(folder, run_folder.CHECKPOINTS, "ckpt"))
    run_folder.check_same_run(folder, recipe)
    run_folder.check_same_run(folder, check_recipe({**recipe, "train": {"epochs": 50}}))  # the same run, extended
    with pytest.raises(ValueError, match=r"another run \(model, data/dataset differ\).*Received: out="):
        run_folder.check_same_run(folder, other)
    (tmp_path / run_folder.CHECKPOINTS / "checkpoint").write_text("garbage {")  # a damaged state file
    with pytest.raises(ValueError, match="another run"):  # still sees the checkpoint files themselves
        run_folder.check_same_run(folder, other)


HOLD_LOCK = """
import sys, time
from mobilenet_sep.train import run_folder
with run_folder.locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(300)
"""


def hold_lock(folder):
    """A live process holding `folder`'s lock (as a running train does); kill it when done."""
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "locked\n"
    return process


def test_a_live_holder_refuses_a_second_run_and_a_killed_ones_lock_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    holder = hold_lock(folder)
    try:
        assert (folder / run_folder.LOCK).read_text() == f"{holder.pid}\n"
        message = rf"Another train run \(pid {holder.pid}\) is writing into this folder.*Received: out='{folder}'$"
        with pytest.raises(ValueError, match=message), run_folder.locked(str(folder)):
            pytest.fail("the lock was given twice")
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, stale
        holder.wait()
    assert (folder / run_folder.LOCK).read_text() == f"{holder.pid}\n"
    notices = []
    with run_folder.locked(str(folder), notices.append):
        assert (folder / run_folder.LOCK).read_text() == f"{os.getpid()}\n"
    assert notices == [f"took over the lock of pid {holder.pid}, which is no longer running"]
    assert os.listdir(folder) == []  # the lock goes with the run


def test_a_refused_run_leaves_no_folder_behind(tmp_path):
    with pytest.raises(ValueError, match="bad input"), run_folder.locked(str(tmp_path / "a" / "b")):
        assert (tmp_path / "a" / "b" / run_folder.LOCK).is_file()
        raise ValueError("bad input")
    assert os.listdir(tmp_path) == []
    with run_folder.locked(str(tmp_path / "c")):
        (tmp_path / "c" / "metrics.json").write_text("{}")
    assert os.listdir(tmp_path / "c") == ["metrics.json"]  # what the run wrote stays


def test_leftovers_of_killed_writes_are_removed(tmp_path):
    (tmp_path / ".tmp-abc123.keras").write_bytes(b"half a model")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "checkpoint.tmp99").write_text("half")
    (tmp_path / "best.keras").write_bytes(b"whole")
    run_folder.remove_leftovers(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["best.keras", "checkpoints"] and not os.listdir(tmp_path / "checkpoints")


def test_models_are_saved_whole_with_every_layer_trainable(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Dense(4, name="base")(inputs)))
    model.get_layer("base").trainable = False
    path = run_folder.save_model(model, str(tmp_path / "best.keras"))
    assert os.listdir(tmp_path) == ["best.keras"]
    assert model.get_layer("base").trainable is False  # the running model keeps its phase
    loaded = keras.saving.load_model(path)
    assert all(layer.trainable for layer in loaded.layers)
    np.testing.assert_array_equal(loaded.get_layer("base").get_weights()[0], model.get_layer("base").get_weights()[0])


def _scalars(folder):
    values = {}
    for name in os.listdir(folder):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                values.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return values


def test_scalar_log_writes_tensorboard_scalars_only_when_enabled(tmp_path):
    log = run_folder.ScalarLog(str(tmp_path / "logs"), enabled=True)
    for epoch, loss in ((1, 2.5), (2, 1.25)):
        log.write({"epoch": epoch, "loss": loss, "top1": 0.5, "test_loss": loss * 2, "test_top1": 0.25})
    train_values, test_values = _scalars(tmp_path / "logs" / "train"), _scalars(tmp_path / "logs" / "test")
    assert train_values["loss"] == [(1, 2.5), (2, 1.25)] and train_values["top1"] == [(1, 0.5), (2, 0.5)]
    assert test_values["loss"] == [(1, 5.0), (2, 2.5)] and "top5" not in test_values
    run_folder.ScalarLog(str(tmp_path / "quiet"), enabled=False).write({"epoch": 1, "loss": 1.0})
    assert not os.path.exists(tmp_path / "quiet")
