"""Each operator of a TFLite file alone: single-op files cut from the file that is timed, to time one by one.

LiteRT's Python interpreter has no per-op profiler, so a layer's time on LiteRT is the time of its
operator run alone: the same operator (same fused activation, same weights and quantization), on
its real input shape, in the same runtime with the same threads. The single-op file is cut from
the converted model's flatbuffer (no second conversion): the operator, its tensors and the
buffers of its weights, with its activation inputs as the file's inputs.
"""

import copy
import dataclasses

import numpy as np

from mobilenet_sep.export.to_tflite import tflite_ops


@dataclasses.dataclass(frozen=True)
class CutOp:
    """One operator of a TFLite graph, as a file of its own.

    `name` is its output tensor's name (the TF ops fused into it, `;`-separated); `producer` the
    position of the operator whose output it reads first (None: it reads the model's input).
    """

    position: int
    label: str
    op_type: str
    name: str
    producer: int | None
    content: bytes
    inputs: tuple  # (shape, dtype name) of each activation input
    outputs: tuple  # (shape, dtype name) of each output


def cut_ops(content: bytes) -> list[CutOp]:
    """Every operator of the first subgraph of `content` as a single-op TFLite file, in execution order."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    labels = tflite_ops(content)
    producers = {output: position for position, op in enumerate(graph.operators) for output in op.outputs}
    types = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
    cut = []
    for position, op in enumerate(graph.operators):
        single, activations = _single_op_model(schema, model, graph, op)
        first = activations[0] if activations else None
        cut.append(
            CutOp(
                position,
                labels[position].label,
                labels[position].name,
                graph.tensors[op.outputs[0]].name.decode(errors="replace"),
                producers.get(first),
                bytes(flatbuffer_utils.convert_object_to_bytearray(single)),
                tuple(_tensor_info(graph.tensors[index], types) for index in activations),
                tuple(_tensor_info(graph.tensors[index], types) for index in op.outputs),
            )
        )
    return cut


def _has_data(model, tensor):
    buffer = model.buffers[tensor.buffer] if tensor.buffer else None
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def _single_op_model(schema, model, graph, op):
    """(a ModelT holding only `op`, the whole graph's indices of its activation inputs)."""
    used = list(dict.fromkeys(index for index in [*op.inputs, *op.outputs] if index >= 0))
    renumbered = {old: new for new, old in enumerate(used)}
    buffers, tensors = [schema.BufferT()], []
    for old in used:
        tensor = copy.copy(graph.tensors[old])
        if _has_data(model, tensor):
            buffers.append(model.buffers[tensor.buffer])
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
        tensors.append(tensor)
    single_op = copy.copy(op)
    single_op.inputs = [renumbered[index] if index >= 0 else -1 for index in op.inputs]
    single_op.outputs = [renumbered[index] for index in op.outputs]
    activations = [index for index in op.inputs if index >= 0 and not _has_data(model, graph.tensors[index])]
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = tensors, [single_op]
    subgraph.inputs = [renumbered[index] for index in activations]
    subgraph.outputs = list(single_op.outputs)
    single = schema.ModelT()
    single.version, single.operatorCodes = model.version, model.operatorCodes
    single.subgraphs, single.buffers, single.description = [subgraph], buffers, "one operator, cut for timing"
    return single, activations


def _tensor_info(tensor, types):
    shape = tuple(int(size) for size in (tensor.shape if tensor.shape is not None else ()))
    return shape, types.get(tensor.type, "UNKNOWN").lower()


class CutOpRunner:
    """A LiteRT interpreter on one cut operator, its inputs set once to seeded random values: `run()` invokes it.

    Only the invoke is timed: copying inputs in and outputs out belongs to the whole model's
    call, not to each of its operators.
    """

    def __init__(self, op: CutOp, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=op.content, num_threads=threads)
        self.interpreter.allocate_tensors()
        rng = np.random.default_rng(op.position)
        for detail in self.interpreter.get_input_details():
            dtype = np.dtype(detail["dtype"])
            if dtype.kind == "f":
                values = rng.uniform(-1.0, 1.0, detail["shape"])
            else:
                info = np.iinfo(dtype)
                values = rng.integers(info.min, info.max, detail["shape"], endpoint=True)
            self.interpreter.set_tensor(detail["index"], values.astype(dtype))

    def run(self):
        self.interpreter.invoke()
