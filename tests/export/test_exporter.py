"""The export door: format dispatch, default file names, argument checks."""

import os

import onnx
import pytest

import mobilenet_sep
from mobilenet_sep.export import exporter as export


def _model():
    return mobilenet_sep.create_model("mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=3)


def test_default_output_path_names_model_and_quantization():
    model = _model()
    assert export.default_output_path(model, "onnx") == "mobilenet_v1_0.25_32.onnx"
    assert export.default_output_path(model, "tflite") == "mobilenet_v1_0.25_32.tflite"
    assert export.default_output_path(model, "tflite", "int8") == "mobilenet_v1_0.25_32_int8.tflite"


def test_export_model_writes_the_format_asked_for_at_the_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = mobilenet_sep.export_model(_model(), format="onnx", source="mobilenet_v1_0.25_224")
    assert result.format == "onnx" and result.path == "mobilenet_v1_0.25_32.onnx"
    assert sorted(os.listdir(tmp_path)) == ["mobilenet_v1_0.25_32.onnx", "mobilenet_v1_0.25_32.onnx.json"]
    opsets = {entry.domain: entry.version for entry in onnx.load(result.path).opset_import}
    assert opsets[""] == export.DEFAULT_OPSET == 17


def test_unknown_formats_and_quantized_onnx_are_refused(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="Received: format='coreml'"):
        export.export_model(model, tmp_path / "m.mlmodel", "coreml")
    with pytest.raises(ValueError, match="Received: quantization='int8'"):
        export.export_model(model, tmp_path / "m.onnx", "onnx", quantization="int8")
    assert os.listdir(tmp_path) == []
