"""The first operators of a TFLite file as a file of their own: prefixes cut from the file that is timed.

LiteRT's Python interpreter has no per-op profiler, so a layer's time on LiteRT is what it adds to
the model: the time of the file cut after the layer's last operator minus the time of the file cut
before its first one (`layer_timing`). A prefix is cut from the converted model's flatbuffer (no
second conversion): the operators up to a position, the tensors and weight buffers they use, the
model's input as its input, and as its outputs every tensor it computes that a later operator (or
the model's output) reads, so no operator of the prefix is dead code.
"""

import copy
import dataclasses

import numpy as np

from mobilenet_sep.export.to_tflite import tflite_ops


@dataclasses.dataclass(frozen=True)
class GraphOp:
    """One operator of a TFLite graph, in execution order.

    `name` is its output tensor's name (the TF ops fused into it, `;`-separated); `producer` the
    position of the operator whose output it reads first (None: it reads the model's input).
    """

    position: int
    label: str
    op_type: str
    name: str
    producer: int | None


def graph_ops(content: bytes) -> list[GraphOp]:
    """Every operator of the first subgraph of `content`, in execution order."""
    from ai_edge_litert.tools import flatbuffer_utils

    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(content)).subgraphs[0]
    labels = tflite_ops(content)
    producers = {output: position for position, op in enumerate(graph.operators) for output in op.outputs}
    ops = []
    for position, op in enumerate(graph.operators):
        reads = [index for index in op.inputs if index in producers or index in graph.inputs]
        ops.append(
            GraphOp(
                position,
                labels[position].label,
                labels[position].name,
                graph.tensors[op.outputs[0]].name.decode(errors="replace"),
                producers.get(reads[0]) if reads else None,
            )
        )
    return ops


def prefix_models(content: bytes, ends) -> list[bytes]:
    """For each position in `ends`, operators 0..end of `content`'s first subgraph as a TFLite file of their own."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    return [bytes(flatbuffer_utils.convert_object_to_bytearray(_prefix(schema, model, end))) for end in ends]


def _prefix(schema, model, end):
    graph = model.subgraphs[0]
    kept, rest = graph.operators[: end + 1], graph.operators[end + 1 :]
    read_later = {index for op in rest for index in op.inputs} | set(graph.outputs)
    outputs = list(dict.fromkeys(index for op in kept for index in op.outputs if index in read_later))
    used = dict.fromkeys([*graph.inputs, *(index for op in kept for index in [*op.inputs, *op.outputs])])
    renumbered = {old: new for new, old in enumerate(index for index in used if index >= 0)}
    buffers, tensors = [schema.BufferT()], []
    for old in renumbered:
        tensor = copy.copy(graph.tensors[old])
        buffer = model.buffers[tensor.buffer] if tensor.buffer else None
        if buffer is not None and buffer.data is not None and len(buffer.data) > 0:
            buffers.append(buffer)
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
        tensors.append(tensor)
    operators = []
    for op in kept:
        op = copy.copy(op)
        op.inputs = [renumbered[index] if index >= 0 else -1 for index in op.inputs]
        op.outputs = [renumbered[index] for index in op.outputs]
        operators.append(op)
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = tensors, operators
    subgraph.inputs = [renumbered[index] for index in graph.inputs]
    subgraph.outputs = [renumbered[index] for index in outputs]
    prefix = schema.ModelT()
    prefix.version, prefix.operatorCodes = model.version, model.operatorCodes
    prefix.subgraphs, prefix.buffers = [subgraph], buffers
    prefix.description = f"operators 0..{end}, cut for timing"
    return prefix


class PrefixRunner:
    """A LiteRT interpreter on a cut file, its input set once to seeded random values: `run()` invokes it.

    Only the invoke is timed: what the whole model's call does besides, setting the input and
    getting the output, is `copy_through()`, timed as a row of its own.
    """

    def __init__(self, content: bytes, threads: int, seed: int = 0):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=content, num_threads=threads)
        self.interpreter.allocate_tensors()
        rng = np.random.default_rng(seed)
        self.inputs = {}
        for detail in self.interpreter.get_input_details():
            dtype = np.dtype(detail["dtype"])
            if dtype.kind == "f":
                values = rng.uniform(-1.0, 1.0, detail["shape"])
            else:
                info = np.iinfo(dtype)
                values = rng.integers(info.min, info.max, detail["shape"], endpoint=True)
            self.inputs[detail["index"]] = values.astype(dtype)
            self.interpreter.set_tensor(detail["index"], self.inputs[detail["index"]])
        self.outputs = [detail["index"] for detail in self.interpreter.get_output_details()]

    def run(self):
        self.interpreter.invoke()

    def copy_through(self):
        for index, values in self.inputs.items():
            self.interpreter.set_tensor(index, values)
        for index in self.outputs:
            self.interpreter.get_tensor(index)
