"""`mobilenet-sep export` and `mobilenet-sep benchmark`: files, figures, JSON, and one-line errors that leave no file."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import meaningful_model
from mobilenet_sep.cli import main
from mobilenet_sep.train.engine import train
from mobilenet_sep.train.recipe import load_recipe


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A small 10-class model saved as .keras, whose scores depend on its input: the digits set's classes."""
    path = tmp_path_factory.mktemp("model") / "small.keras"
    meaningful_model(classes=10).save(path)
    return str(path)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """The digits recipe trained for 4 epochs (about 85 % top-1): a model with something to lose."""
    folder = tmp_path_factory.mktemp("digits")
    return train(load_recipe("digits", ["train.epochs=4"]), str(folder / "run")).final_model


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def _black_images(folder, count=50):
    """A folder dataset of one class of all-black images: a calibration set that has seen no digit."""
    for number in range(count):
        path = folder / "black" / f"{number}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return f"folder:{folder}"


def test_int8_export_calibrates_and_evaluates_on_digits(tmp_path, capsys, keras_file):
    out = tmp_path / "small_int8.tflite"
    arguments = ["export", keras_file, "--format", "tflite", "--quantize", "int8", "--data", "digits"]
    # An untrained net's classes lie close together: it keeps about 80 % of its choices through int8.
    bounds = ["--min-agreement", "0.6", "--max-top1-drop", "10"]
    assert main([*arguments, *bounds, "--out", str(out), "--json"]) == 0
    metadata = _json(capsys)
    assert metadata["path"] == str(out) and os.path.isfile(out)
    assert json.loads((tmp_path / "small_int8.tflite.json").read_text())["sha256"] == metadata["sha256"]
    assert metadata["calibration"]["samples"] == 200 and metadata["calibration"]["data"].startswith("digits")
    verification = metadata["verification"]
    assert verification["evaluation_examples"] == 360  # digits' test split: 20 % of 1,797
    assert verification["accuracy_bounds"] == {"max_top1_drop": 10.0, "min_agreement": 0.6}
    assert 0.6 <= verification["top1_agreement"] < 1.0 and abs(verification["top1_delta"]) <= 10
    assert metadata["source"]["model"] == keras_file and len(metadata["source"]["sha256"]) == 64


@pytest.mark.slow
def test_trained_digits_int8_passes_and_black_calibration_is_refused(tmp_path, capsys, digits_model):
    """Calibrated on the digits it passes the default bounds; calibrated on black images it is refused."""
    out = tmp_path / "digits_int8.tflite"
    arguments = ["export", digits_model, "--format", "tflite", "--quantize", "int8", "--data", "digits"]
    assert main([*arguments, "--out", str(out), "--json"]) == 0
    verification = _json(capsys)["verification"]
    assert verification["passed"] and verification["keras_top1"] > 0.5  # a model with accuracy to lose
    assert verification["top1_agreement"] >= 0.9 and verification["top1_delta"] >= -1.0
    os.remove(out)
    os.remove(f"{out}.json")

    black = ["--calibration-data", _black_images(tmp_path / "black")]
    assert main([*arguments, *black, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: The tflite int8 export failed its check (top-1 agreement with Keras ")
    assert len(error.splitlines()) == 1 and "below the minimum 90.00 %" in error and "nothing was written" in error
    assert sorted(os.listdir(tmp_path)) == ["black"]

    assert main([*arguments, *black, "--out", str(out), "--force", "--json"]) == 0
    written = json.loads((tmp_path / "digits_int8.tflite.json").read_text())
    assert written["verification"]["passed"] is False and written["bytes"] == os.path.getsize(out)
    assert written["verification"]["top1_agreement"] < 0.9 and written["calibration"]["data"].startswith("folder:")
    assert written["evaluation_data"].endswith("digits: test split evaluates")


def test_onnx_export_of_a_zoo_name_prints_its_check(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "mobilenet_v1_0.25_128", "--format", "onnx"]) == 0
    table = capsys.readouterr().out  # an untrained zoo model scores every input alike: only the graph is judged here
    assert "relative error" in table and "Conv x28" in table
    assert sorted(os.listdir(tmp_path)) == ["mobilenet_v1_0.25_128.onnx", "mobilenet_v1_0.25_128.onnx.json"]


def _broken_files(folder):
    corrupt = folder / "corrupt.keras"
    corrupt.write_bytes(b"not a zip archive")
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Lambda(lambda x: 2 * x)(inputs)).save(folder / "unsafe.keras")
    return str(corrupt), str(folder / "unsafe.keras")


def test_errors_are_one_line_exit_2_and_leave_no_file(tmp_path, capsys, keras_file):
    corrupt, unsafe = _broken_files(tmp_path)
    out = str(tmp_path / "out.tflite")
    cases = {
        ("export", keras_file, "--format", "coreml", "--out", out): "invalid choice: 'coreml'",
        ("export", keras_file, "--format", "tflite", "--quantize", "int4", "--out", out): "invalid choice: 'int4'",
        ("export", keras_file, "--format", "tflite", "--quantize", "int8", "--out", out): "needs representative data",
        ("export", keras_file, "--format", "onnx", "--quantize", "int8", "--out", out): "ONNX export takes no quantization",
        ("export", keras_file, "--format", "tflite", "--quantize", "dynamic", "--calibration-data", "digits"): (
            "--calibration-data calibrates int8"
        ),
        ("export", keras_file, "--format", "tflite", "--min-agreement", "2", "--out", out): "Received: min_agreement=2.0",
        ("export", keras_file, "--format", "onnx", "--out", str(tmp_path / "no" / "m.onnx")): "folder does not exist",
        ("export", corrupt, "--format", "onnx", "--out", out): "Cannot load",
        ("export", unsafe, "--format", "onnx", "--out", out): "safe_mode",
        ("benchmark", keras_file, "--runtimes", "tf,tensorrt"): "Received: runtimes='tf,tensorrt'",
        ("benchmark", keras_file, "--batch-size", "0"): "Received: batch_sizes=[0, 1]",
        ("benchmark", out, "--runtimes", "onnx"): "an exported file runs on its own runtime",
    }
    for arguments, message in cases.items():
        assert main(list(arguments)) == 2, arguments
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and len(error.splitlines()) == 1 and message in error, error
    assert sorted(os.listdir(tmp_path)) == ["corrupt.keras", "unsafe.keras"]


def test_benchmark_reports_latency_and_throughput_per_runtime(tmp_path, capsys, keras_file):
    arguments = ["benchmark", keras_file, "--runtimes", "tf,litert", "--batch-size", "4", "--threads", "1"]
    assert main([*arguments, "--repeats", "3", "--json"]) == 0
    timings = _json(capsys)["timings"]
    assert [(row["runtime"], row["batch_size"]) for row in timings] == [
        ("tf", 1),
        ("tf", 4),
        ("litert", 1),
        ("litert", 4),
    ]
    assert all(row["repeats"] == 3 and row["p25_ms"] <= row["median_ms"] <= row["p75_ms"] for row in timings)
    assert timings[2]["threads"] == 1 and timings[2]["file_bytes"] > 0

    onnx_file = tmp_path / "small.onnx"
    assert main(["export", keras_file, "--format", "onnx", "--out", str(onnx_file)]) == 0
    capsys.readouterr()
    assert main(["benchmark", str(onnx_file), "--batch-size", "2", "--repeats", "3"]) == 0
    table = capsys.readouterr().out
    assert "onnx" in table and "batch 1 latency ms" in table and "batch 2 images/s" in table
