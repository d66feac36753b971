"""ONNX export through tf2onnx, checked with ONNX Runtime against the Keras model."""

import collections
import os

import numpy as np

from mobilenet_sep.export_common import finish_export, fixed_input_shape, verify
from mobilenet_sep.files import check_output_path

DEFAULT_OPSET = 17
ONNX_TOLERANCE = 1e-5
"""Largest relative error of ONNX Runtime's outputs against Keras' that passes."""


def convert_to_onnx(model, opset=DEFAULT_OPSET):
    """The model as a serialized ONNX graph: one input named `input`, a dynamic batch dimension."""
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < 13:
        raise ValueError(f"`opset` must be an int >= 13. Received: opset={opset!r}")
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, *fixed_input_shape(model)), tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    return proto.SerializeToString()


class OnnxRunner:
    """An ONNX Runtime session on `threads` intra-op threads: `runner(images) -> outputs`."""

    def __init__(self, content, threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images):
        return self.session.run(None, {self.input_name: np.asarray(images, "float32")})[0]


def onnx_op_counts(content):
    """{op type: count} of the ONNX graph's nodes."""
    import onnx

    return dict(collections.Counter(node.op_type for node in onnx.load_from_string(content).graph.node))


def export_onnx(
    model,
    path,
    *,
    opset=DEFAULT_OPSET,
    tolerance=ONNX_TOLERANCE,
    evaluation=None,
    force=False,
    source=None,
    data_description=None,
):
    """Export `model` to an ONNX file at `path`, verified with ONNX Runtime, plus `path.json`.

    A file whose outputs differ from Keras' on random inputs by more than
    `tolerance` (relative) is not written unless `force`; `evaluation` =
    (images, labels) adds top-1 agreement on real data. `source` (zoo name or
    `.keras` path) and `data_description` go into the metadata. Returns an `ExportResult`.
    """
    path = check_output_path(path)
    content = convert_to_onnx(model, opset)
    verification = verify(OnnxRunner(content), model, tolerance=tolerance, evaluation=evaluation)
    details = {
        "opset": opset,
        "evaluation_data": data_description if evaluation is not None else None,
        "graph": {"ops": onnx_op_counts(content)},
    }
    return finish_export(
        model,
        os.fspath(path),
        content,
        format="onnx",
        quantization="none",
        verification=verification,
        force=force,
        source=source,
        details=details,
    )
