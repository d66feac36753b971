"""How each runtime's file is cut for per-layer timing (`layer_timing`): the row each of its ops'
time goes to, its prefixes and a runner per prefix.

`keys(content, tally)` names each op's row through `tally` (`layer_timing._Tally`), in the order
the runtime runs them; `prefix_models(content, ends)` cuts the file after each end;
`runner(prefix, threads, images)` gives a prefix's runner: `run()` runs it, `copy_through()` copies
its input in and its outputs out, as the whole model's call does.
"""

from mobilenet_sep.speed import onnx_cut, tflite_cut


class LiteRTCutter:
    """How a LiteRT file is cut: its operators' rows, its prefixes and their runner."""

    @staticmethod
    def keys(content, tally):
        """The row each operator's time goes to, in execution order."""
        keys, rows_by_op = [], {}
        for op in tflite_cut.graph_ops(content):
            layers = [layer for part in op.name.split(";") if (layer := tally.graph.layer_named_in(part))]
            if not layers and not tally.inserted_by_runtime(op.op_type):
                # The last op writes the model's output, named after the signature: the layer after its producer's.
                successor = tally.graph.successor(rows_by_op.get(op.producer), tally.taken)
                layers = [successor] if successor else []
            key = tally.key(layers, op.label, named=True)
            # An op the runtime inserted (QUANTIZE) passes on the layer of the op before it.
            rows_by_op[op.position] = rows_by_op.get(op.producer) if key in tally.runtime_rows else key
            keys.append(key)
        return keys

    prefix_models = staticmethod(tflite_cut.prefix_models)

    @staticmethod
    def runner(content, threads, images):
        return tflite_cut.PrefixRunner(content, threads)


class OnnxCutter:
    """How an ONNX file is cut: its nodes' rows, its prefixes and their runner."""

    @staticmethod
    def keys(content, tally):
        """The row each node's time goes to, in the file's order: a node naming no layer is its readers'."""
        return [
            tally.key([node.name] if tally.graph.layer_named_in(node.name) else list(node.read_by), node.op_type)
            for node in onnx_cut.graph_nodes(content)
        ]

    prefix_models = staticmethod(onnx_cut.prefix_models)
    runner = staticmethod(onnx_cut.PrefixRunner)


CUTTERS = {"onnx": OnnxCutter, "litert": LiteRTCutter, "litert-int8": LiteRTCutter}
"""The cutter of each runtime timed by prefixes."""
