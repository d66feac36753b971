"""`mobilenet-sep train` and `evaluate`: real commands, kill -9 and resume, two local workers, one-line errors."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from mobilenet_sep import zoo
from mobilenet_sep.cli import main
from mobilenet_sep.cli.train_command import build_overrides
from mobilenet_sep.data import DataOptions, load_dataset
from mobilenet_sep.evaluate import evaluate
from mobilenet_sep.recipe import load_recipe
from mobilenet_sep.train import train

FAST = [
    'model.name="mobilenet_v1_0.25_128"',
    "train.steps_per_epoch=10",
    "train.batch_size=40",
    "schedule.warmup_epochs=0",
    "schedule.decay=constant",
]
"""The digits recipe, narrowest MobileNet, a few constant-rate steps per epoch (as in test_train)."""


def _command(*arguments):
    return [sys.executable, "-m", "mobilenet_sep.cli", *arguments]


def _sets(overrides):
    return [part for override in overrides for part in ("--set", override)]


def test_train_then_evaluate_in_process(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", "digits", "--out", str(out), "--epochs", "1", *_sets([*FAST, "train.steps_per_epoch=3"])]) == 0
    )
    printed = capsys.readouterr().out
    assert "epoch   1/1" in printed and "top-1" in printed and f"wrote {out}/best.keras" in printed
    with open(out / "metrics.json") as file:
        metrics = json.load(file)
    assert metrics["complete"] and metrics["history"][0]["epoch"] == 1
    plot = tmp_path / "confusion.png"
    assert main(["evaluate", str(out / "final.keras"), "digits", "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert f"{metrics['top1']:.2%}" in printed and "confusion matrix" in printed and "360" in printed
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in printed.splitlines() if "│" in line]
    for true_class, counts in enumerate(metrics["confusion_matrix"]):  # the table shows the saved model's matrix
        assert [str(true_class), *(str(count) if count else "." for count in counts)] in rows
    assert plot.stat().st_size > 1000


def test_flags_become_recipe_overrides():
    from mobilenet_sep.cli import build_parser

    args = build_parser().parse_args(
        ["train", "digits", "--set", "train.seed=3", "--epochs", "2", "--batch-size", "16", "--learning-rate", "0.5"]
        + ["--dataset", "tfds:cifar10", "--weights", "/w/base.h5", "--freeze-base", "--download", "--data-dir", "/d"]
    )
    overrides = build_overrides(args)
    recipe = load_recipe("digits", overrides)
    assert recipe["train"]["seed"] == 3 and recipe["train"]["epochs"] == 2 and recipe["train"]["batch_size"] == 16
    assert recipe["optimizer"]["learning_rate"] == 0.5 and recipe["data"]["dataset"] == "tfds:cifar10"
    assert recipe["data"]["download"] is True and recipe["data"]["data_dir"] == "/d"
    assert recipe["finetune"]["weights"] == "/w/base.h5" and recipe["finetune"]["freeze_base"] is True
    flowers = ["train", "flowers_finetune"]
    assert load_recipe("flowers_finetune")["data"]["test_dataset"] == "tfds:tf_flowers:train[80%:]"
    recipe = load_recipe("flowers_finetune", build_overrides(build_parser().parse_args([*flowers, "--dataset", "x"])))
    assert recipe["data"]["test_dataset"] == ""  # a new dataset brings its own test split
    arguments = [*flowers, "--dataset", "folder:a", "--test-dataset", "folder:b"]
    recipe = load_recipe("flowers_finetune", build_overrides(build_parser().parse_args(arguments)))
    assert recipe["data"]["dataset"] == "folder:a" and recipe["data"]["test_dataset"] == "folder:b"


@pytest.mark.parametrize(
    "arguments,message",
    [
        (
            ["--set", "train.epoch=3"],
            "error: Unknown recipe key. Did you mean: train.epochs? Received: key='train.epoch'",
        ),
        (["--batch-size", "0"], "error: Recipe key train.batch_size must be > 0. Received: train.batch_size=0"),
        (["--set", "model.image_size=16"], "Received: model.image_size=16"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(arguments, message, tmp_path):
    result = subprocess.run(
        _command("train", "digits", "--out", str(tmp_path / "run"), *arguments), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_errors_found_after_tensorflow_starts_are_one_line_too(tmp_path, capsys):
    assert main(["train", "digits", "--out", str(tmp_path / "run"), "--dataset", "nope"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Unknown dataset kind") and error.strip().endswith("Received: dataset='nope'")
    assert len(error.strip().splitlines()) == 1


def _wait_for(condition, process, timeout=180):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _finished_epochs(out):
    state = out / "checkpoints" / "checkpoint"
    return state.exists() and "ckpt-1" in state.read_text()


def test_kill_9_mid_run_and_rerun_continues_exactly(tmp_path):
    out = tmp_path / "run"
    overrides = [*FAST, "train.epochs=2"]
    command = _command("train", "digits", "--out", str(out), "--json", *_sets(overrides))
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _wait_for(lambda: _finished_epochs(out), process)
        os.kill(process.pid, signal.SIGKILL)  # in the middle of epoch 2
        process.wait()
    with open(out / "metrics.json") as file:
        interrupted = json.load(file)
    assert not interrupted["complete"] and len(interrupted["history"]) in (1, 2)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming after epoch" in rerun.stderr
    resumed = json.loads(rerun.stdout)
    assert resumed["complete"] and resumed["resumed_from_epoch"] >= 1
    assert resumed["history"][0] == interrupted["history"][0]  # the finished epoch is kept, not redone
    # Exact: the same numbers as a run never interrupted.
    reference = train(load_recipe("digits", overrides), tmp_path / "reference").metrics
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in reference["history"]]
    assert [r["test_top1"] for r in resumed["history"]] == [r["test_top1"] for r in reference["history"]]
    assert resumed["confusion_matrix"] == reference["confusion_matrix"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_local_workers_train_with_identical_falling_losses(tmp_path):
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    out = tmp_path / "run"
    command = _command("train", "digits", "--out", str(out), "--strategy", "multi-worker", "--json")
    # Batches of 64: the last test batch (40 of 360 images) is split unevenly between the workers.
    command += _sets([*FAST, "train.epochs=2", "train.steps_per_epoch=8", "train.batch_size=64"])
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        environment = {**os.environ, "TF_CONFIG": json.dumps(config)}
        processes.append(
            subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    try:
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    chief, other = (json.loads(stdout) for stdout, _ in outputs)
    losses = [record["loss"] for record in chief["history"]]
    assert chief["replicas"] == 2 and all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    assert [record["loss"] for record in other["history"]] == losses  # identical on both workers
    assert other["confusion_matrix"] == chief["confusion_matrix"]
    with open(out / "metrics.json") as file:
        assert json.load(file)["history"] == json.loads(json.dumps(chief["history"]))  # written by the chief
    assert not [name for name in os.listdir(out) if name.startswith(".worker")]  # scratch folders removed
    # Both workers' BatchNorm statistics were reconciled: the chief's file scores what the workers measured.
    test_set = load_dataset("digits", DataOptions("test", (32, 32, 3), batch_size=120))
    single = evaluate(zoo.load_model(str(out / "final.keras")), test_set)
    assert single["confusion_matrix"] == chief["confusion_matrix"]
    assert single["loss"] == pytest.approx(chief["loss"], rel=1e-5)
