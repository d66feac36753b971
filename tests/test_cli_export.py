"""`mobilenet-sep export` and `mobilenet-sep benchmark`: files, figures, JSON, and one-line errors that leave no file."""

import json
import os

import keras
import pytest

import mobilenet_sep
from mobilenet_sep.cli import main


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A small 10-class model saved as .keras: the digits set's classes, so accuracies mean something."""
    path = tmp_path_factory.mktemp("model") / "small.keras"
    mobilenet_sep.create_model("mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=10).save(path)
    return str(path)


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_int8_export_calibrates_and_evaluates_on_digits(tmp_path, capsys, keras_file):
    out = tmp_path / "small_int8.tflite"
    arguments = ["export", keras_file, "--format", "tflite", "--quantize", "int8", "--data", "digits"]
    assert main([*arguments, "--out", str(out), "--json"]) == 0
    metadata = _json(capsys)
    assert metadata["path"] == str(out) and os.path.isfile(out)
    assert json.loads((tmp_path / "small_int8.tflite.json").read_text())["sha256"] == metadata["sha256"]
    assert metadata["calibration"]["samples"] == 200 and metadata["calibration"]["data"].startswith("digits")
    verification = metadata["verification"]
    assert verification["evaluation_examples"] == 360  # digits' test split: 20 % of 1,797
    assert verification["keras_top1"] is not None and verification["top1_delta"] is not None
    assert metadata["source"]["model"] == keras_file and len(metadata["source"]["sha256"]) == 64


def test_onnx_export_of_a_zoo_name_prints_its_check(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "mobilenet_v1_0.25_128", "--format", "onnx"]) == 0
    table = capsys.readouterr().out
    assert "relative error" in table and "passed" in table and "Conv x28" in table
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
        ("export", keras_file, "--format", "tflite", "--quantize", "int8", "--out", out): "needs --data SPEC",
        ("export", keras_file, "--format", "onnx", "--quantize", "int8", "--out", out): "apply to --format tflite",
        ("export", keras_file, "--format", "onnx", "--out", str(tmp_path / "no" / "m.onnx")): "folder does not exist",
        ("export", corrupt, "--format", "onnx", "--out", out): "Cannot load",
        ("export", unsafe, "--format", "onnx", "--out", out): "safe_mode",
        ("benchmark", keras_file, "--runtimes", "tf,tensorrt"): "Received: runtimes='tf,tensorrt'",
        ("benchmark", keras_file, "--batch-size", "0"): "Received: batch_size=0",
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
    assert all(row["repeats"] == 3 and row["median_ms"] > 0 for row in timings)
    assert timings[2]["threads"] == 1 and timings[2]["file_bytes"] > 0

    onnx_file = tmp_path / "small.onnx"
    assert main(["export", keras_file, "--format", "onnx", "--out", str(onnx_file)]) == 0
    capsys.readouterr()
    assert main(["benchmark", str(onnx_file), "--batch-size", "2", "--repeats", "3"]) == 0
    table = capsys.readouterr().out
    assert "onnx" in table and "batch 1 latency ms" in table and "batch 2 images/s" in table
