"""ONNX export through tf2onnx, checked with ONNX Runtime against the Keras model."""

import collections
import os

import numpy as np

from mobilenet_sep.export.formats import DEFAULT_OPSET
from mobilenet_sep.export.fuse import can_fuse, fuse
from mobilenet_sep.export.verify import FLOAT32_TOLERANCE, finish_export, verify
from mobilenet_sep.utils import checks
from mobilenet_sep.utils.files import check_output_path
from mobilenet_sep.utils.inputs import fixed_input_shape


def convert_to_onnx(model, opset=DEFAULT_OPSET, fused=True):
    """The model as a serialized ONNX graph: one input named `input`, a dynamic batch dimension.

    With `fused`, a functional model is converted as `fuse(model)`: tf2onnx leaves a BatchNorm
    after a depthwise convolution as Mul + Add and ZeroPadding2D as Pad; the fused graph has neither.
    """
    checks.positive_int(opset, "opset", minimum=13)
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, *fixed_input_shape(model)), tf.float32, name="input"),)
    graph = fuse(model) if fused and can_fuse(model) else model
    proto, _ = tf2onnx.convert.from_keras(graph, input_signature=signature, opset=opset)
    return proto.SerializeToString()


class OnnxRunner:
    """An ONNX Runtime session on `threads` intra-op threads: `runner(images) -> outputs`."""

    def __init__(self, content, threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        # Idle threads block instead of spinning: a spinning session steals the cores of the next one
        # timed in alternating rounds, and of anything else on the machine (the 0.25_128 twin on 2
        # shared cores: 9.1 ms spinning, 1.8 ms not).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
    tolerance=FLOAT32_TOLERANCE,
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
