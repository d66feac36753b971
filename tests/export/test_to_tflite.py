"""TFLite export in every mode: LiteRT against Keras logits, the op list against Keras' own MobileNet, failures.

Every model here has outputs that depend on its input (`helpers.meaningful_model`): a file that
computes something else, or a quantization that loses too much, fails.
"""

import collections
import json
import os

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import mobilenet_sep
from helpers import meaningful_model, normalize_batchnorm, relative_error
from mobilenet_sep.export import to_tflite as export_tflite
from mobilenet_sep.export.verify import AccuracyBounds, ExportError
from mobilenet_sep.export.to_tflite import TfliteOp, check_tflite_graph

UNFOLDED = {"MUL", "ADD", "SUB", "RSQRT", "RELU", "RELU6", "MINIMUM", "MAXIMUM"}


def _small_model(name="mobilenet_v1_0.25_224", input_shape=(32, 32, 3), **overrides):
    return meaningful_model(name, input_shape, classes=5, **overrides)


def _interpreter(path):
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter, images):
    """Image by image, the file's quantization applied by hand: independent of LiteRTRunner."""
    (input_details,), (output_details,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert tuple(input_details["shape"]) == (1, *images.shape[1:])  # exported files take a fixed batch of one
    if input_details["dtype"] == np.int8:
        scale, zero_point = input_details["quantization"]
        images = np.clip(np.round(images / scale) + zero_point, -128, 127).astype(np.int8)
    outputs = []
    for image in images:
        interpreter.set_tensor(input_details["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_details["index"]))
    outputs = np.concatenate(outputs)
    if output_details["dtype"] == np.int8:
        scale, zero_point = output_details["quantization"]
        outputs = (outputs.astype(np.float32) - zero_point) * scale
    return outputs


@pytest.mark.parametrize(
    "name,input_shape,overrides,quantization,tolerance",
    [
        ("mobilenet_v1_0.25_224", (48, 32, 3), {}, "none", 1e-5),
        ("mobilenet_v1_0.25_224", (32, 32, 3), {"output_stride": 8}, "none", 1e-5),  # dilated, as the digits recipe
        ("mobilenet_v1_0.25_224", (32, 32, 3), {}, "float16", 1e-2),
        ("conv_mobilenet_v1_0.25_224", (32, 32, 3), {}, "none", 1e-4),  # long 3x3xC sums: ~1e-5 in another order
    ],
)
def test_float_files_match_keras_and_lower_to_fused_builtin_ops(
    tmp_path, rng, name, input_shape, overrides, quantization, tolerance
):
    model = _small_model(name, input_shape, **overrides)
    path = tmp_path / "model.tflite"
    result = export_tflite.export_tflite(model, path, quantization=quantization)
    assert result.verification.passed and result.verification.relative_error <= tolerance

    images = rng.uniform(-1, 1, (3, *input_shape)).astype("float32")
    interpreter = _interpreter(path)
    assert relative_error(_run(interpreter, images), model(images, training=False)) <= tolerance

    counts = _assert_fused_builtin_graph(path, interpreter, separable=name.startswith("mobilenet"))
    metadata = json.loads((tmp_path / "model.tflite.json").read_text())
    assert metadata["graph"]["ops"] == counts and metadata["quantization"] == quantization


def _assert_fused_builtin_graph(path, interpreter, separable=True):
    """One DEPTHWISE_CONV_2D per block, 15 CONV_2D, no BatchNorm or activation op: as the interpreter lists them."""
    # The interpreter lists the file's ops, then the XNNPACK delegate node that runs them.
    names = [op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
    counts = collections.Counter(names)
    assert counts["DEPTHWISE_CONV_2D"] == (13 if separable else 0)
    assert counts["CONV_2D"] == 15  # stem, 13 pointwise (twin: 13 full 3x3), classifier
    assert not UNFOLDED & set(counts), counts
    parsed = export_tflite.tflite_ops(path.read_bytes())
    assert [op.name for op in parsed] == names  # our flatbuffer reader agrees with the interpreter
    assert sum(op.activation == "RELU6" for op in parsed) == (27 if separable else 14)
    return dict(counts)


def test_op_list_is_that_of_keras_applications_mobilenet():
    ours = _small_model("mobilenet_v1_0.25_224", (64, 48, 3))
    reference = keras.applications.MobileNet(
        alpha=0.25, input_shape=(64, 48, 3), weights=None, classes=5, classifier_activation=None
    )
    normalize_batchnorm(reference)
    labels = [
        [op.label for op in export_tflite.tflite_ops(export_tflite.convert_to_tflite(model))]
        for model in (ours, reference)
    ]
    assert labels[0] == labels[1]
    assert labels[0].count("DEPTHWISE_CONV_2D+RELU6") == 13


# On random inputs and labels, 40 examples: a drop is noise of 2.5 points per example, agreement about
# 70-90 % (a trained net on real data: 99 % and more, see tests/cli). The default bounds are tested on
# their own (test_a_quantized_file_that_misses_its_accuracy_bounds_is_refused).
LOOSE = {"max_top1_drop": 15.0, "min_agreement": 0.6}


@pytest.mark.parametrize("quantization", ["dynamic", "int8"])
def test_quantized_files_report_top1_agreement_and_accuracy_delta(tmp_path, rng, quantization):
    model = _small_model()
    representative = rng.uniform(-1, 1, (20, 32, 32, 3)).astype("float32")
    images = rng.uniform(-1, 1, (40, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 5, 40)
    path = tmp_path / "model.tflite"
    result = export_tflite.export_tflite(
        model,
        path,
        quantization=quantization,
        representative_images=[representative[:8], representative[8:]],
        evaluation=(images, labels),
        calibration_samples=16,
        **LOOSE,
    )
    interpreter = _interpreter(path)
    exported = _run(interpreter, images)
    _assert_fused_builtin_graph(path, interpreter)
    keras_outputs = np.asarray(model(images, training=False))
    verification = result.verification
    assert verification.passed and verification.tolerance is None and verification.evaluation_examples == 40
    assert verification.accuracy_bounds == AccuracyBounds(**LOOSE)
    assert verification.top1_agreement == pytest.approx(np.mean(exported.argmax(1) == keras_outputs.argmax(1)))
    assert 0.6 <= verification.top1_agreement < 1.0  # quantization moves some choices: the check sees them
    assert verification.keras_top1 == pytest.approx(np.mean(keras_outputs.argmax(1) == labels))
    assert verification.exported_top1 == pytest.approx(np.mean(exported.argmax(1) == labels))
    assert 1e-3 < relative_error(exported, keras_outputs) < 1.0

    metadata = json.loads((tmp_path / "model.tflite.json").read_text())
    assert metadata["verification"]["top1_delta"] == pytest.approx(verification.top1_delta)
    assert metadata["verification"]["accuracy_bounds"] == LOOSE
    assert metadata["calibration"] == ({"samples": 16, "data": None} if quantization == "int8" else None)
    assert os.path.getsize(path) < 0.4 * 4 * model.count_params()  # int8 weights: about a quarter of fp32
    if quantization == "int8":
        weights = [
            tensor
            for tensor in Interpreter(model_path=str(path)).get_tensor_details()
            if tensor["dtype"] == np.int8
            and len(tensor["shape"]) == 4
            and len(tensor["quantization_parameters"]["scales"]) > 1
        ]
        assert len(weights) == 28  # every conv and depthwise kernel, per channel


def test_a_quantized_file_that_misses_its_accuracy_bounds_is_refused(tmp_path, rng):
    """Calibrated on black images only, int8 clips every real activation: refused, one line with the figures."""
    model = _small_model()
    images = rng.uniform(-1, 1, (40, 32, 32, 3)).astype("float32")
    black = -np.ones((16, 32, 32, 3), "float32")  # black in the [-1, 1] range
    path = tmp_path / "model.tflite"
    options = {"quantization": "int8", "representative_images": black, "evaluation": (images, None)}
    with pytest.raises(ExportError) as refused:
        export_tflite.export_tflite(model, path, **options)
    figures = refused.value.verification
    message = str(refused.value)
    assert figures.top1_agreement < 0.9 and figures.accuracy_bounds == AccuracyBounds()  # the defaults
    assert f"top-1 agreement with Keras {100 * figures.top1_agreement:.2f} % on 40 test examples" in message
    assert "below the minimum 90.00 %" in message and len(message.splitlines()) == 1
    assert os.listdir(tmp_path) == []

    forced = export_tflite.export_tflite(model, path, force=True, **options)
    metadata = json.loads((tmp_path / "model.tflite.json").read_text())
    assert os.path.getsize(path) == metadata["bytes"] and metadata["verification"]["passed"] is False
    assert metadata["verification"]["problems"] == list(forced.verification.problems) == [message.split("(", 1)[1].split("); nothing")[0]]
    # What refused it is the bound, not the file: without it the same figures pass.
    unbounded = export_tflite.export_tflite(model, path, min_agreement=0.0, **options)
    assert unbounded.verification.passed and unbounded.verification.top1_agreement == figures.top1_agreement


def test_a_file_litert_cannot_load_is_refused_in_one_line(tmp_path, monkeypatch):
    def refusing_runner(content, threads=None):
        raise RuntimeError("failed to create XNNPACK runtime\nNode number 31 (TfLiteXNNPackDelegate) failed to prepare.")

    monkeypatch.setattr(export_tflite, "LiteRTRunner", refusing_runner)
    path = tmp_path / "model.tflite"
    with pytest.raises(ExportError, match=r"does not load in LiteRT \(failed to create XNNPACK runtime Node") as refused:
        export_tflite.export_tflite(_small_model(), path)
    assert len(str(refused.value).splitlines()) == 1 and f"Received: out={str(path)!r}" in str(refused.value)
    assert os.listdir(tmp_path) == []


def test_int8_io_takes_and_returns_int8(tmp_path, rng):
    model = _small_model()
    representative = rng.uniform(-1, 1, (16, 32, 32, 3)).astype("float32")
    path = tmp_path / "model.tflite"
    result = export_tflite.export_tflite(
        model, path, quantization="int8", representative_images=representative, int8_io=True, min_agreement=0.0
    )
    interpreter = _interpreter(path)
    _assert_fused_builtin_graph(path, interpreter)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert "QUANTIZE" not in result.metadata["graph"]["ops"] and result.metadata["int8_io"] is True
    images = representative[:4]
    exported = _run(interpreter, images)
    np.testing.assert_allclose(export_tflite.LiteRTRunner(path.read_bytes())(images), exported)
    assert 1e-3 < relative_error(exported, model(images, training=False)) < 1.0


def test_a_dynamic_batch_file_runs_any_batch_in_one_call(rng):
    model = _small_model()
    runner = export_tflite.LiteRTRunner(export_tflite.convert_to_tflite(model, batch_size=None))
    assert runner.fixed_batch is None and runner.input["shape_signature"][0] == -1
    images = rng.uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    assert relative_error(runner(images), model(images, training=False)) <= 1e-5
    assert runner.batch_size == 3  # one call of batch 3, not three of batch 1


def test_a_file_outside_its_tolerance_is_refused_unless_forced(tmp_path):
    model = _small_model()
    path = tmp_path / "model.tflite"
    with pytest.raises(ExportError, match=r"relative error \S+ exceeds the tolerance 0.*nothing was written"):
        export_tflite.export_tflite(model, path, tolerance=0.0)
    assert os.listdir(tmp_path) == []
    result = export_tflite.export_tflite(model, path, tolerance=0.0, force=True)
    assert not result.verification.passed and os.path.isfile(path) and os.path.isfile(f"{path}.json")


def _mobilenet_ops(blocks=13):
    ops = [TfliteOp("CONV_2D", "RELU6")]
    for _ in range(blocks):
        ops += [TfliteOp("DEPTHWISE_CONV_2D", "RELU6"), TfliteOp("CONV_2D", "RELU6")]
    return ops + [TfliteOp("MEAN"), TfliteOp("CONV_2D", "NONE"), TfliteOp("RESHAPE")]


def test_graph_check_names_each_kind_of_defect():
    model = mobilenet_sep.create_model("mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=5)
    good = _mobilenet_ops()
    assert check_tflite_graph(good, model, "none") == []
    unfused = (
        good[:1]
        + [TfliteOp("DEPTHWISE_CONV_2D", "NONE"), TfliteOp("MUL"), TfliteOp("ADD"), TfliteOp("RELU6")]
        + good[2:]
    )
    problems = " | ".join(check_tflite_graph(unfused, model, "none"))
    assert "separate ops ['ADD', 'MUL', 'RELU6']" in problems and "26 convolutions with fused RELU6" in problems
    assert "not followed by their pointwise CONV_2D" in problems
    flex = good + [TfliteOp("CUSTOM:FlexConv2D")]
    assert "non-builtin ops ['CUSTOM:FlexConv2D']" in check_tflite_graph(flex, model, "none")[0]
    assert "12 DEPTHWISE_CONV_2D ops for 13" in check_tflite_graph(_mobilenet_ops(12), model, "none")[0]
    per_tensor = [TfliteOp(op.name, op.activation, "INT8", 1, 16) if op.name.endswith("CONV_2D") else op for op in good]
    assert check_tflite_graph(per_tensor, model, "int8") == ["convolution weights not quantized per channel"]


def test_bad_quantization_arguments_are_refused_before_converting():
    model = _small_model()
    with pytest.raises(ValueError, match="Received: quantization='int4'"):
        export_tflite.convert_to_tflite(model, "int4")
    with pytest.raises(ValueError, match="representative data.*Received: representative_images=None"):
        export_tflite.convert_to_tflite(model, "int8")
    with pytest.raises(ValueError, match="Received: quantization='dynamic'"):
        export_tflite.convert_to_tflite(model, "dynamic", int8_io=True)
    with pytest.raises(ValueError, match="Received: batch_size=8"):
        export_tflite.convert_to_tflite(model, batch_size=8)


def test_calibration_draws_single_images_up_to_its_limit(rng):
    batches = [rng.uniform(-1, 1, (4, 8, 8, 3)), rng.uniform(-1, 1, (4, 8, 8, 3))]
    calibration = export_tflite.Calibration(batches, limit=6)
    samples = [sample for (sample,) in calibration()]
    assert len(samples) == 6 == calibration.used and samples[0].shape == (1, 8, 8, 3)
    np.testing.assert_array_equal(samples[5][0], batches[1][1].astype("float32"))
    with pytest.raises(ValueError, match="no images"):
        list(export_tflite.Calibration(np.zeros((0, 8, 8, 3)))())
