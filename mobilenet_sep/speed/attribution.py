"""Runtime ops back to Keras layers, and the time of each op within one run.

Every runtime names its ops after the TensorFlow ops it was converted from, and those are named
after the Keras layers: `model_1/conv_dw_1_bn_1/batchnorm/mul_1` computes layer `conv_dw_1_bn`
(Keras adds `_1` when it traces a model again). The first path segment that is a layer's name says
which layer an op belongs to.

A runtime that fuses layers into one op (a convolution with its folded BatchNorm and its ReLU6)
names the op after one of them (ONNX Runtime: the ReLU6, whose output the fused op writes) or all
of them (TFLite: `;`-separated). The op's time belongs to the convolution; the layers fused into
it have no time of their own. `LayerGraph.claim` makes that call for every op.

`timeline_shares` splits one run's wall time between its ops: each instant goes to the ops running
then (shared equally when ops overlap), and a gap where none runs goes to the op that starts next,
whose dispatch the runtime was busy with. The shares add up to the run's span exactly, so the
runtime's per-op overhead is charged to the ops, not lost.
"""

import collections
import dataclasses
import re

import keras

from mobilenet_sep.profiler import HEADLINE_KINDS, Profile

FUSABLE_KINDS = ("normalization", "activation", "layout")
"""What a runtime folds into the convolution before it: BatchNorm, the activation, zero padding."""

_COPY_SUFFIX = re.compile(r"_\d+$")


def is_compute_op(op_type: str) -> bool:
    """Convolutions and matrix products: the ops that carry a fused layer's time."""
    lowered = op_type.lower()
    return any(word in lowered for word in ("conv", "matmul", "gemm", "fully_connected"))


@dataclasses.dataclass(frozen=True)
class Claim:
    """The profile row an op's time goes to, and the rows fused into that op (no time of their own)."""

    row: str
    fused: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class LayerGraph:
    """A model's profile rows with the links between its layers: what runtime op names are matched against.

    `feeds[name]` are the layers whose outputs layer `name` reads (the model's inputs by their
    `sources` names); `rows_of[layer]` the profile rows of one layer (two for a SeparableConv2D:
    `block/depthwise`, `block/pointwise`).
    """

    profile: Profile
    feeds: dict
    rows_of: dict
    kinds: dict  # row name -> the profiler's kind
    sources: tuple  # names of the model's input layers

    @classmethod
    def of(cls, model: keras.Model, profile: Profile) -> "LayerGraph":
        rows_of = collections.defaultdict(list)
        for row in profile.rows:
            rows_of[row.name.split("/")[0]].append(row.name)
        kinds = {row.name: row.kind for row in profile.rows}
        sources = tuple(tensor._keras_history.operation.name for tensor in model.inputs)
        return cls(profile, _feeds(model), dict(rows_of), kinds, sources)

    def layer_named_in(self, op_name: str) -> str | None:
        """The layer the first matching path segment of `op_name` names, or None."""
        for segment in re.split(r"[/;]", op_name):
            for candidate in (segment, _COPY_SUFFIX.sub("", segment)):
                if candidate in self.rows_of:
                    return candidate
        return None

    def row_of(self, layer: str, op_type: str) -> str:
        """The profile row of `layer` an op of `op_type` computes (a separable block: its depthwise or pointwise row)."""
        rows = self.rows_of[layer]
        if len(rows) > 1:
            wanted = "depthwise" if "depthwise" in op_type.lower() else "pointwise"
            rows = [row for row in rows if row.endswith(f"/{wanted}")] or rows
        return rows[0]

    def claim(self, layers: list[str], op_type: str) -> Claim:
        """Whose time an op of `op_type` naming `layers` is.

        A compute op named after a BatchNorm or an activation is the convolution that feeds it,
        fused with the layers between: walk back to it. Of several layers named, the op is the
        compute one (convolution, dense) and the others are fused into it.
        """
        kinds = self.kinds
        rows = [self.row_of(layer, op_type) for layer in dict.fromkeys(layers)]
        headline = [row for row in rows if kinds[row] in HEADLINE_KINDS]
        if headline:
            return Claim(headline[0], tuple(row for row in rows if row != headline[0]))
        if len(rows) == 1 and is_compute_op(op_type):
            walked, current = [], rows[0]
            while kinds.get(current) in FUSABLE_KINDS and len(self.feeds.get(current, ())) == 1:
                walked.append(current)
                current = self.feeds[current][0]
                if kinds.get(current) in HEADLINE_KINDS:
                    return Claim(current, tuple(walked))
        return Claim(rows[0], tuple(rows[1:]))

    def readers(self, layer: str) -> list[str]:
        """The rows (graph order) that read `layer`'s output."""
        return [row.name for row in self.profile.rows if layer in self.feeds.get(row.name, ())]

    def host(self, name: str, timed: set) -> str | None:
        """The timed convolution a row without ops was folded into, or None.

        A BatchNorm or an activation folds into the convolution before it (through others of its
        kind), a zero padding into the one after it: `fuse` and the converters do both.
        """
        kinds, row = self.kinds, next(row for row in self.profile.rows if row.name == name)
        if "Padding" in (row.layer_class or ""):
            step = self.readers
        elif kinds[name] in ("normalization", "activation"):
            step = lambda layer: self.feeds.get(layer, ())  # noqa: E731
        else:
            return None
        current = name
        while True:
            following = step(current)
            if len(following) != 1:
                return None
            current = following[0]
            if kinds.get(current) in HEADLINE_KINDS:
                return current if current in timed else None
            if kinds.get(current) not in FUSABLE_KINDS:
                return None

    def successor(self, layer: str | None, taken: set) -> str | None:
        """The first layer (graph order) reading `layer`'s output (None: the model's input) that no op has claimed yet."""
        readers = (
            self.readers(layer) if layer is not None else [r for source in self.sources for r in self.readers(source)]
        )
        return next((reader for reader in readers if reader not in taken), None)


def _feeds(model):
    """{layer name: names of the layers whose outputs it reads}, from the functional graph."""
    graph = model._functional if isinstance(model, keras.Sequential) else model
    feeds = {}
    for layer in graph.layers:
        for node in layer._inbound_nodes[:1]:
            feeds[layer.name] = tuple(tensor._keras_history.operation.name for tensor in node.input_tensors)
    return feeds


def timeline_shares(events) -> dict:
    """{key: seconds} of one run from (start, end, key) events: overlaps shared, idle gaps to the next op.

    The shares add up to the last end minus the first start.
    """
    points = sorted(
        [(start, 1, index) for index, (start, _, _) in enumerate(events)]
        + [(end, 0, index) for index, (_, end, _) in enumerate(events)]
    )
    shares = collections.defaultdict(float)
    active, idle, last = set(), 0.0, points[0][0] if points else 0.0
    for time, starts, index in points:
        elapsed = time - last
        if elapsed > 0:
            if active:
                for running in active:
                    shares[events[running][2]] += elapsed / len(active)
            else:
                idle += elapsed
        last = time
        if starts:
            shares[events[index][2]] += idle
            idle = 0.0
            active.add(index)
        else:
            active.discard(index)
    return dict(shares)


def kernel_seconds(events) -> dict:
    """{key: seconds} of one run: each op's own duration, overlaps and gaps ignored."""
    totals = collections.defaultdict(float)
    for start, end, key in events:
        totals[key] += end - start
    return dict(totals)
