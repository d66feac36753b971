"""Checkpoints under kill -9: files on disk before the state file names them, the last two kept,
damaged ones found by reading every tensor back, leftovers of killed writes removed."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mobilenet_sep.train import checkpoints


def _store(folder):
    variable = tf.Variable(np.zeros(1000, np.float32))
    return checkpoints.Checkpoints(tf.train.Checkpoint(values=variable), str(folder)), variable


def _saved(folder, numbers):
    store, variable = _store(folder)
    for number in numbers:
        variable.assign(np.full(1000, number, np.float32))
        store.save(number)
    return store


def test_files_reach_the_disk_before_the_state_file_names_them(tmp_path, monkeypatch):
    synced = []  # (path, the checkpoints the state file names at that moment)
    original = checkpoints._fsync

    def recording(path):
        state = tf.train.get_checkpoint_state(str(tmp_path))
        named = [os.path.basename(name) for name in state.all_model_checkpoint_paths] if state else []
        synced.append((os.path.basename(path), named))
        original(path)

    monkeypatch.setattr(checkpoints, "_fsync", recording)
    _saved(tmp_path, [1, 2, 3])
    for number in (1, 2, 3):
        data = [listed for path, listed in synced if path.startswith(f"ckpt-{number}.")]
        assert len(data) == 2 and all(f"ckpt-{number}" not in names for names in data)  # index and data: unnamed yet
    state_syncs = [listed for path, listed in synced if path == "checkpoint"]
    assert state_syncs[-1] == ["ckpt-2", "ckpt-3"]  # the last two kept
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
    ]


def _truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def _flip_a_byte(path):
    content = bytearray(path.read_bytes())
    content[len(content) // 3] ^= 0xFF
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(
    "damage,file,reason",
    [
        (_truncate, "ckpt-3.data-00000-of-00001", "Read less bytes than requested"),
        (_flip_a_byte, "ckpt-3.data-00000-of-00001", "Checksum does not match"),
        (_truncate, "ckpt-3.index", "not an sstable"),
        (lambda path: path.write_bytes(b""), "ckpt-3.data-00000-of-00001", "Read less bytes"),
        (os.remove, "ckpt-3.index", "Failed to find any matching files"),
    ],
)
def test_a_damaged_latest_checkpoint_is_reported_and_the_previous_one_used(damage, file, reason, tmp_path):
    _saved(tmp_path, [1, 2, 3])
    damage(tmp_path / file)
    notices = []
    assert checkpoints.newest_intact(str(tmp_path), notices.append) == str(tmp_path / "ckpt-2")
    assert len(notices) == 1 and "\n" not in notices[0]
    assert notices[0].startswith("checkpoint ckpt-3 is damaged (") and reason in notices[0]
    assert notices[0].endswith("; resuming from ckpt-2")
    store, variable = _store(tmp_path)  # the previous one restores whole
    store.manager.checkpoint.restore(str(tmp_path / "ckpt-2")).assert_consumed()
    np.testing.assert_array_equal(variable.numpy(), np.full(1000, 2, np.float32))


def test_with_every_checkpoint_damaged_the_run_starts_afresh_and_says_so(tmp_path):
    _saved(tmp_path, [1, 2])
    for number in (1, 2):
        _truncate(tmp_path / f"ckpt-{number}.data-00000-of-00001")
    notices = []
    assert checkpoints.newest_intact(str(tmp_path), notices.append) is None
    assert [notice.split(" (")[0] for notice in notices] == [f"checkpoint ckpt-{n} is damaged" for n in (2, 1)]
    assert notices[0].endswith("resuming from ckpt-1") and notices[1].endswith("starting from scratch")
    assert checkpoints.newest_intact(str(tmp_path / "absent")) is None


def test_an_unreadable_state_file_falls_back_to_the_checkpoint_files(tmp_path):
    _saved(tmp_path, [4, 5])
    (tmp_path / "checkpoint").write_text("model_checkpoint_path: ")  # cut short
    assert checkpoints.listed(str(tmp_path)) == [str(tmp_path / "ckpt-5"), str(tmp_path / "ckpt-4")]
    assert checkpoints.newest_intact(str(tmp_path)) == str(tmp_path / "ckpt-5")


def test_leftovers_of_killed_writes_are_removed_and_nothing_else(tmp_path):
    _saved(tmp_path, [1])
    kept = sorted(os.listdir(tmp_path))
    (tmp_path / "ckpt-2_temp").mkdir()
    (tmp_path / "ckpt-2_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    (tmp_path / "ckpt-2.data-00000-of-00001.tempstate123").write_bytes(b"half")
    (tmp_path / "checkpoint.tmp0123abcd").write_text("half")
    assert checkpoints.remove_leftovers(str(tmp_path)) == [
        "checkpoint.tmp0123abcd",
        "ckpt-2.data-00000-of-00001.tempstate123",
        "ckpt-2_temp",
    ]
    assert sorted(os.listdir(tmp_path)) == kept
    assert checkpoints.remove_leftovers(str(tmp_path / "absent")) == []
