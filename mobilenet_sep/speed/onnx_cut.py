"""The first nodes of an ONNX file as a model of their own: prefixes cut from the file that is timed.

The ONNX counterpart of `tflite_cut`: a layer's time on ONNX Runtime is what it adds to the model,
the time of the file cut after the layer's last node minus the time of the file cut before its
first one (`layer_timing`). A prefix keeps the nodes up to a position (ONNX stores them in
topological order), the weights they read, the model's input, and as outputs every tensor they
compute that a later node (or the model's output) reads. ONNX Runtime optimizes each prefix as it
optimizes the whole file, so a convolution and its ReLU6 are one fused node in both.
"""

import dataclasses

import numpy as np

from mobilenet_sep.export.to_onnx import OnnxRunner


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """One node of an ONNX graph, in the file's (topological) order, with the names of the nodes reading its outputs.

    A node the converter merged (a depthwise convolution with its bias: `Conv__223`) names no
    layer; the node reading it (its ReLU6) does.
    """

    position: int
    name: str
    op_type: str
    read_by: tuple


def graph_nodes(content: bytes) -> list[GraphNode]:
    import onnx

    nodes = onnx.load_from_string(content).graph.node
    readers = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node.name)
    return [
        GraphNode(
            position, node.name, node.op_type, tuple(reader for name in node.output for reader in readers.get(name, ()))
        )
        for position, node in enumerate(nodes)
    ]


def prefix_models(content: bytes, ends) -> list[bytes]:
    """For each position in `ends`, nodes 0..end of `content` as an ONNX model of their own."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(content))
    graph = model.graph
    described = {value.name: value for value in [*graph.value_info, *graph.output]}
    prefixes = []
    for end in ends:
        kept, rest = graph.node[: end + 1], graph.node[end + 1 :]
        read_later = {name for node in rest for name in node.input} | {output.name for output in graph.output}
        outputs = list(dict.fromkeys(name for node in kept for name in node.output if name in read_later))
        read = {name for node in kept for name in node.input}
        prefix_graph = onnx.helper.make_graph(
            list(kept),
            f"{graph.name}_to_{end}",
            list(graph.input),
            [described[name] for name in outputs],
            [weight for weight in graph.initializer if weight.name in read],
        )
        prefix = onnx.helper.make_model(prefix_graph, opset_imports=model.opset_import)
        prefix.ir_version = model.ir_version
        prefixes.append(prefix.SerializeToString())
    return prefixes


class PrefixRunner:
    """An ONNX Runtime session on a cut file, its input bound once: `run()` runs it.

    Inputs and outputs stay ONNX Runtime's own (`IOBinding`): what the whole model's call does
    besides running, making an input from a numpy array and copying the outputs back, is
    `copy_through()`, timed as a row of its own.
    """

    def __init__(self, content: bytes, threads: int, images: np.ndarray):
        import onnxruntime

        self.images = np.asarray(images, "float32")
        self.session = OnnxRunner(content, threads).session
        self.binding = self.session.io_binding()
        self.input = onnxruntime.OrtValue.ortvalue_from_numpy(self.images)  # kept: the binding does not own it
        self.binding.bind_ortvalue_input(self.session.get_inputs()[0].name, self.input)
        for output in self.session.get_outputs():
            self.binding.bind_output(output.name, "cpu")
        self._ort_value = onnxruntime.OrtValue
        self.run()  # the outputs exist from here on: `copy_through` reads them

    def run(self):
        self.session.run_with_iobinding(self.binding)

    def copy_through(self):
        self._ort_value.ortvalue_from_numpy(self.images)
        self.binding.copy_outputs_to_cpu()
