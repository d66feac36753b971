"""Prefixes cut from the files that are timed: each computes what the Keras model computes up to its cut."""

import keras
import numpy as np
import pytest

from helpers import relative_error
from mobilenet_sep.export.to_onnx import OnnxRunner, convert_to_onnx
from mobilenet_sep.export.to_tflite import convert_to_tflite, tflite_ops
from mobilenet_sep.speed import onnx_cut, tflite_cut


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")


def _keras_until(model, layer, images):
    expected = np.asarray(keras.Model(model.input, model.get_layer(layer).output)(images, training=False))
    assert np.ptp(expected) > 0.1  # an output that is not constant
    return expected


def test_tflite_prefixes_compute_the_model_up_to_their_cut(tiny, images):
    content = convert_to_tflite(tiny)
    ops = tflite_cut.graph_ops(content)
    assert [op.label for op in ops] == [op.label for op in tflite_ops(content)] and len(ops) > 20
    assert ops[0].producer is None and all(op.producer == op.position - 1 for op in ops[1:])
    assert "conv1" in ops[0].name and "conv_pw_13" in ops[26].name
    stem, body, whole = tflite_cut.prefix_models(content, [0, 26, len(ops) - 1])
    assert len(stem) < len(body) < len(whole) <= len(content) + 1024
    for prefix, layer in ((stem, "conv1_relu"), (body, "conv_pw_13_relu"), (whole, "conv_preds")):
        runner = tflite_cut.PrefixRunner(prefix, threads=1)
        interpreter = runner.interpreter
        assert len(interpreter.get_output_details()) == 1  # the cut tensor: no dead op, no other output
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
        runner.run()
        output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        expected = _keras_until(tiny, layer, images)
        assert relative_error(output.reshape(expected.shape), expected) < 1e-5


def test_onnx_prefixes_compute_the_model_up_to_their_cut(tiny, images):
    content = convert_to_onnx(tiny)
    nodes = onnx_cut.graph_nodes(content)
    relu = next(node for node in nodes if "conv_dw_1_relu" in node.name)
    merged = nodes[relu.position - 1]  # the depthwise convolution with its folded BatchNorm
    assert merged.op_type == "Conv" and relu.name in merged.read_by
    prefix, whole = onnx_cut.prefix_models(content, [relu.position, len(nodes) - 1])
    # ONNX Runtime computes NCHW: the cut after a ReLU6 outputs the tensor before the layout changes back.
    output = OnnxRunner(prefix, threads=1)(images)
    expected = _keras_until(tiny, "conv_dw_1_relu", images)
    assert relative_error(output.transpose(0, 2, 3, 1), expected) < 1e-5
    runner = onnx_cut.PrefixRunner(whole, threads=1, images=images)
    runner.run()
    (output,) = runner.binding.copy_outputs_to_cpu()
    assert relative_error(output, OnnxRunner(content, threads=1)(images)) < 1e-6
    assert relative_error(output, np.asarray(tiny(images, training=False))) < 1e-4
