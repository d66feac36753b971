"""Fault injection: one training run killed with SIGKILL at ten moments, rerun after each, ends with
exactly the files of a run never interrupted.

The moments are seeded. Eight are random points of the run's timeline, in order: after training
step s of epoch e plus a random delay, so they fall in training steps, or after an epoch's last
step in its evaluation, the best model's save, metrics.json and the checkpoint write. One is
inside a checkpoint write (made slow to land there: its files written, not yet on disk nor named
by the state file), one inside the final save (final.keras written under its temporary name, not
yet renamed). Then an eleventh fault: the newest checkpoint cut in half before the last rerun, which
reports it in one line and resumes from the one before. Every process runs `mobilenet-sep train`,
forked from a warm server (tests/helpers).
"""

import os
import random
import signal
import time

import numpy as np
import pytest

from helpers import start_warm_process
from mobilenet_sep import zoo
from mobilenet_sep.train import checkpoints, run_folder

EPOCHS, STEPS = 3, 2
ARGUMENTS = ["train", "digits", "--epochs", str(EPOCHS), "--json", "--batch-size", "40"]
SETTINGS = ('model.name="mobilenet_v1_0.25_128"', f"train.steps_per_epoch={STEPS}", 'optimizer.name="sgd"')
ARGUMENTS += [part for setting in (*SETTINGS, "optimizer.weight_decay=0") for part in ("--set", setting)]
"""The digits recipe, shortened: the narrowest MobileNet, 3 epochs of 2 steps, SGD (with the
recipe's momentum 0.9: optimizer slots to resume) for a cheaper trace; dropout, label smoothing
and augmentation as the recipe says: all must resume exactly."""

CHILD = """
import time

import tensorflow as tf

from mobilenet_sep.cli import main, progress
from mobilenet_sep.train import checkpoints, run_folder

tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})  # a faster start, in every run alike


def event(name):
    with open(events, "a") as file:
        file.write(name + "\\n")


def logging_method(name):
    original = getattr(progress.TrainProgress, name)

    def logged(self, *args):
        original(self, *args)
        event(name)

    return logged


for name in ("start", "epoch_end"):
    setattr(progress.TrainProgress, name, logging_method(name))
step = progress.TrainProgress.step


def logged_step(self, epoch, index, loss):
    step(self, epoch, index, loss)
    event(f"step {epoch + 1} {index + 1}")


progress.TrainProgress.step = logged_step
if slow == "checkpoint":
    sync_files = checkpoints._fsync_files

    def slow_sync(prefix):
        event("checkpoint write")
        time.sleep(120)
        sync_files(prefix)

    checkpoints._fsync_files = slow_sync
if slow == "final":
    save_model = run_folder.save_model

    def slow_final_save(model, path):
        if path.endswith(run_folder.FINAL):
            def save_then_wait(temporary, **options):
                type(model).save(model, temporary, **options)
                event("final save")
                time.sleep(120)

            model.save = save_then_wait
        return save_model(model, path)

    run_folder.save_model = slow_final_save
raise SystemExit(main(arguments))
"""

TIMING = ("wall_seconds", "train_seconds", "images_per_second")
"""Figures that differ between any two runs; with resumed_from_epoch, all a resumed run may change."""


def _start(folder, name, slow=None):
    events = folder / f"{name}.events"
    arguments = [*ARGUMENTS, "--out", str(folder / "run")]
    process = start_warm_process(CHILD, folder / f"{name}.log", events=str(events), slow=slow, arguments=arguments)
    return process, events


def _events(path):
    return path.read_text().splitlines() if path.exists() else []


def _kill_after(process, events, condition, delay):
    """SIGKILL the process `delay` seconds after `condition(events so far)` holds; the events then."""
    deadline = time.monotonic() + 300
    while not condition(_events(events)):
        assert process.is_alive(), f"the run ended before the kill: {_events(events)[-3:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
    time.sleep(delay)
    assert process.is_alive(), "the run ended before the kill"
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert process.exitcode == -signal.SIGKILL
    return _events(events)


def _intact_state(run):
    """What a kill must leave: every checkpoint the state file names reads back whole, metrics.json (once
    written) parses; the epoch of the newest checkpoint."""
    named = checkpoints.listed(str(run / run_folder.CHECKPOINTS))
    assert all(checkpoints.damage(path) is None for path in named), named
    assert not (run / run_folder.METRICS).exists() or run_folder.read_json(str(run / run_folder.METRICS))
    return int(named[0].rpartition("-")[2]) if named else 0


def _comparable(metrics):
    """metrics.json without the figures any two runs differ in."""
    drop = {*TIMING, "resumed_from_epoch"}
    kept = {key: value for key, value in metrics.items() if key not in drop}
    kept["history"] = [{key: value for key, value in record.items() if key not in TIMING} for record in kept["history"]]
    return kept


def _weights(path):
    return zoo.load_model(str(path)).get_weights()


def _plan(rng):
    """The ten kills in order: eight (epoch, step, delay) points of the timeline, sorted, the checkpoint
    write somewhere among them, the final save last. Delays are at most 0.3 s (an epoch's evaluation and
    saves take longer; 1.5 s once outlasted a whole epoch), none in the last epoch: a kill must leave a step."""
    steps = [(epoch, step) for epoch in range(1, EPOCHS + 1) for step in range(1, STEPS + 1)]
    plan = [(epoch, step, rng.uniform(0, 0.3) if epoch < EPOCHS else 0.0) for epoch, step in rng.sample(steps * 2, 8)]
    plan.sort()
    plan.insert(rng.randint(0, len(plan)), "checkpoint write")
    return [*plan, "final save"]


@pytest.mark.slow
def test_ten_sigkills_at_random_moments_end_exactly_as_an_uninterrupted_run(tmp_path):
    (tmp_path / "reference").mkdir()
    reference, _ = _start(tmp_path / "reference", "run")
    reference.join(timeout=300)
    assert reference.exitcode == 0, (tmp_path / "reference" / "run.log").read_text()[-3000:]
    run, kills = tmp_path / "run", []
    for index, moment in enumerate(_plan(random.Random(14))):
        finished = _intact_state(run)
        if isinstance(moment, str):  # a slowed write: kill once inside it
            process, events = _start(tmp_path, f"kill-{index}", slow=moment.split()[0])
            seen = _kill_after(process, events, lambda lines, marker=moment: marker in lines, 0.0)
        else:  # after step s of epoch e (of an epoch this run does: a kill may have landed after a checkpoint)
            epoch, step, delay = moment
            target = f"step {epoch} {step}" if epoch > finished else f"step {finished + 1} 1"
            assert finished < EPOCHS, f"kill {index - 1} outlasted the last checkpoint: no step left for {moment}"
            process, events = _start(tmp_path, f"kill-{index}")
            seen = _kill_after(process, events, lambda lines, marker=target: marker in lines, delay)
        kills.append((moment, finished, seen[-1]))
        log = (tmp_path / f"kill-{index}.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        if index:  # every rerun found the killed run's lock and took it over
            assert "took over the lock of pid" in log, log[-3000:]
    # And an eleventh fault: the newest checkpoint damaged (cut in half) before the last rerun.
    newest = _intact_state(run)
    data = run / run_folder.CHECKPOINTS / f"ckpt-{newest}.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    last, _ = _start(tmp_path, "last")
    last.join(timeout=300)
    log = (tmp_path / "last.log").read_text()
    assert last.exitcode == 0, log[-3000:]
    damaged = [line for line in log.splitlines() if "is damaged" in line]
    assert len(damaged) == 1 and damaged[0].startswith(f"warning: checkpoint ckpt-{newest} is damaged (")
    assert damaged[0].endswith(f"resuming from ckpt-{newest - 1}") and f"resuming after epoch {newest - 1}" in log
    assert len(kills) == 10 and {"checkpoint write", "final save"} <= {event for _, _, event in kills}, kills
    resumed = run_folder.read_json(str(run / run_folder.METRICS))
    expected = run_folder.read_json(str(tmp_path / "reference" / "run" / run_folder.METRICS))
    assert resumed["complete"] and _comparable(resumed) == _comparable(expected)
    for name in (run_folder.FINAL, run_folder.BEST):
        for got, want in zip(_weights(run / name), _weights(tmp_path / "reference" / "run" / name), strict=True):
            np.testing.assert_array_equal(got, want)
    leftovers = [name for name in os.listdir(run) if name.startswith(run_folder.TEMPORARY_PREFIX)]
    assert not leftovers and not checkpoints.remove_leftovers(str(run / run_folder.CHECKPOINTS))
    assert not (run / run_folder.LOCK).exists()
