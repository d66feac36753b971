"""`mobilenet-sep train` and `evaluate`: real commands and one-line errors.

Kill -9 and resume: tests/train/test_faults.py; README's two local workers: tests/train/test_distribute.py.
"""

import json
import os
import subprocess
import sys

import pytest

from mobilenet_sep.cli import main
from mobilenet_sep.cli.train_command import build_overrides
from mobilenet_sep.train import run_folder
from mobilenet_sep.train.recipe import load_recipe

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
        (["--set", "model.input_shape=[16, 16, 3]"], "Received: input_shape=(16, 16, 3)"),
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


def test_a_folder_a_live_run_holds_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    with run_folder.locked(str(out)):  # as a live run holds it (flock: another open file is refused, here too)
        assert main(["train", "digits", "--out", str(out), *_sets(FAST)]) == 2
        assert os.listdir(out) == [run_folder.LOCK]  # nothing written
    error = capsys.readouterr().err
    assert error.startswith(f"error: Another train run (pid {os.getpid()}) is writing into this folder")
    assert error.strip().endswith(f"Received: out={str(out)!r}") and len(error.strip().splitlines()) == 1
