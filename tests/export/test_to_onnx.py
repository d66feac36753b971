"""ONNX export: ONNX Runtime matches Keras logits on small separable, non-square and twin models; failures write nothing."""

import hashlib
import json
import os

import numpy as np
import onnxruntime
import pytest

import mobilenet_sep
from helpers import meaningful_model, randomize_batchnorm, relative_error
from mobilenet_sep.export import to_onnx as export_onnx
from mobilenet_sep.export.verify import FLOAT32_TOLERANCE, ExportError


def _small_model(name, input_shape):
    return meaningful_model(name, input_shape, classes=5)


@pytest.mark.parametrize(
    "name,input_shape",
    [("mobilenet_v1_0.25_224", (48, 32, 3)), ("conv_mobilenet_v1_0.25_224", (32, 32, 3))],
)
def test_onnx_runtime_matches_keras_logits_at_any_batch(tmp_path, rng, name, input_shape):
    model = _small_model(name, input_shape)
    path = tmp_path / "model.onnx"
    result = export_onnx.export_onnx(model, path, source=name)

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_input,) = session.get_inputs()
    assert onnx_input.shape[1:] == list(input_shape) and not isinstance(onnx_input.shape[0], int)
    for batch in (2, 5):  # whole batches, as the exporter compares: one image alone sits nearer the tolerance
        images = rng.uniform(-1, 1, (batch, *input_shape)).astype("float32")
        error = relative_error(session.run(None, {onnx_input.name: images})[0], model(images, training=False))
        assert error <= 1e-5
    assert result.verification.passed and result.verification.relative_error <= 1e-5

    metadata = json.loads((tmp_path / "model.onnx.json").read_text())
    assert metadata["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() == result.metadata["sha256"]
    assert metadata["bytes"] == os.path.getsize(path) == result.file_bytes
    assert metadata["source"]["zoo_config"] == mobilenet_sep.get_entry(name).config
    assert metadata["model"]["parameters"] == model.count_params()
    assert metadata["model"]["mult_adds"] == mobilenet_sep.profile(model).mult_adds
    assert metadata["opset"] == 17 and metadata["quantization"] == "none"
    assert metadata["verification"]["relative_error"] == result.verification.relative_error
    assert metadata["tools"]["tf2onnx"] and metadata["tools"]["onnxruntime"] == onnxruntime.__version__
    assert metadata["graph"]["ops"]["Conv"] == (28 if name.startswith("mobilenet") else 15)


def test_a_file_that_fails_parity_is_refused_unless_forced(tmp_path, monkeypatch):
    model = _small_model("mobilenet_v1_0.25_224", (32, 32, 3))
    convert, seeds = export_onnx.convert_to_onnx, iter(range(10, 20))

    def stale_converter(model, opset):
        """Converts, then the Keras model moves on: the file no longer computes what Keras computes."""
        content = convert(model, opset)
        randomize_batchnorm(model, seed=next(seeds))
        return content

    monkeypatch.setattr(export_onnx, "convert_to_onnx", stale_converter)
    path = tmp_path / "model.onnx"
    refusal = rf"relative error \S+ exceeds the tolerance {FLOAT32_TOLERANCE:.3g}.*nothing was written"
    with pytest.raises(ExportError, match=refusal):
        export_onnx.export_onnx(model, path)
    assert os.listdir(tmp_path) == []

    result = export_onnx.export_onnx(model, path, force=True)
    assert not result.verification.passed and result.verification.relative_error > 1e-3
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "model.onnx.json"]
    assert json.loads((tmp_path / "model.onnx.json").read_text())["verification"]["passed"] is False


def test_opset_and_input_size_are_checked_before_converting(tmp_path):
    model = _small_model("mobilenet_v1_0.25_224", (32, 32, 3))
    with pytest.raises(ValueError, match="Received: opset=9"):
        export_onnx.convert_to_onnx(model, opset=9)
    any_size = mobilenet_sep.MobileNetV1(alpha=0.25, input_shape=None, classes=3)
    with pytest.raises(ValueError, match="fixed size"):
        export_onnx.export_onnx(any_size, tmp_path / "model.onnx")
    assert os.listdir(tmp_path) == []


def test_onnx_runner_uses_the_threads_it_is_given(rng):
    model = _small_model("mobilenet_v1_0.25_224", (32, 32, 3))
    runner = export_onnx.OnnxRunner(export_onnx.convert_to_onnx(model), threads=1)
    assert runner.session.get_session_options().intra_op_num_threads == 1
    images = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    assert relative_error(runner(images), model(images, training=False)) <= 1e-5
    assert np.asarray(runner(images)).shape == (2, 5)
