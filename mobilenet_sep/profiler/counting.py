"""Exact multiply-add and parameter counts, layer by layer, read from a built Keras model.

`profile(model)` walks the model's own graph (one source of truth: no second
description of the network) and counts each layer with the paper's formulas,
Dp being the output's spatial size and M, N the input and output channels:

- standard    Dk^2 * M * N * Dp^2 (grouped: M / groups)
- depthwise   Dk^2 * M * Dp^2, times the depth multiplier
- pointwise   M * N * Dp^2
- dense       M * N, times every position of a rank > 2 input

Non-square kernels, strides, paddings and dilation change only Dp, which is
read from the built graph, so they need no formula of their own; zero padding
counts as input, as in the paper and in TensorFlow's profiler. A 1x1
convolution whose input is 1x1 spatially (MobileNet's `conv_preds` after global
pooling) is the paper's fully connected layer and is classified `dense`.
Counts are per example (the batch axis is ignored).

The headline total sums the four kinds above. Auxiliary rows keep their own
count, out of the total as the paper counts, in operations of an inference
graph: normalization one multiply-add per output element (BatchNorm folds to a
scale and a shift), activation one operation per output element (a comparison
for ReLU), pooling one per window tap per output element (global pooling: per
input element), elementwise merges one per output element per extra input,
layout layers (padding, reshape, dropout, ...) none. A layer nothing here can
count is listed with kind `other` and the note "not counted", never dropped;
`register_counter` teaches the profiler a new layer class.

`params` counts every weight (bias, BatchNorm statistics included, as
`model.count_params()`); `kernel_weights` only conv and dense kernels, as paper
Table 2 does. `mobilenet_v1_1.0_224` gives 568,740,352 mult-adds and 4,253,864
parameters, TF-slim's figures. Where a printed figure disagrees with the exact
count it is shown beside it (`profiler.render.compare_published`), never bent:
paper Table 2 prints 1.19 % for the 3x3 conv (exact 1.91 %: 10,838,016 of
568,740,352; the printed shares add up to 99.29 %); Table 7 prints 290 M for
1.0_160 (exact 290.68 M, TF-slim 291); Table 4 prints 4866 M for the
standard-conv twin (exact 4867.29 M; its conv layers alone make 4866.27 M). TF-slim's table prints every 0.75 model
2.6 % low (317 M at 224: exact 325.40 M, the paper's 325), 34 M for 0.25_192
(exact 30.21 M) and 150 M for 0.5_224 (exact 149.497 M).
"""

import dataclasses
import json
import math
from collections.abc import Callable

import keras

from mobilenet_sep.layers import DepthwiseConv, PointwiseConv, PointwiseConv3D, SortPoints
from mobilenet_sep.layers.neighbour_grid import CELLS

HEADLINE_KINDS = ("standard", "depthwise", "pointwise", "dense")
AUXILIARY_KINDS = ("normalization", "activation", "pooling", "elementwise", "layout")
KINDS = HEADLINE_KINDS + AUXILIARY_KINDS + ("other",)
NOT_COUNTED = "not counted"


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One row of a profile. Shapes exclude the batch axis; a layer with several inputs has a tuple of shapes.

    `mult_adds` is the layer's multiply-adds (for auxiliary kinds: operations, see the module docstring).
    Fields left None by a counter are filled from the model's graph.
    """

    name: str
    kind: str
    mult_adds: int
    params: int = 0
    kernel_weights: int = 0
    kernel: tuple | None = None
    stride: tuple | None = None
    dilation: tuple | None = None
    input_shape: tuple | None = None
    output_shape: tuple | None = None
    layer_class: str | None = None
    note: str = ""

    @property
    def flops(self):
        """2 x mult-adds: one multiplication and one addition each, as TensorFlow's profiler counts."""
        return 2 * self.mult_adds

    @property
    def in_total(self):
        return self.kind in HEADLINE_KINDS

    def to_dict(self):
        return {**dataclasses.asdict(self), "flops": self.flops, "in_total": self.in_total}


@dataclasses.dataclass(frozen=True)
class Profile:
    """The rows of one model and their totals; `profiler.render` draws them as a table, CSV or PNG."""

    model_name: str
    input_shape: tuple
    rows: tuple

    @property
    def mult_adds(self):
        """The headline total: standard, depthwise, pointwise and dense layers."""
        return sum(row.mult_adds for row in self.rows if row.in_total)

    @property
    def flops(self):
        return 2 * self.mult_adds

    @property
    def params(self):
        return sum(row.params for row in self.rows)

    @property
    def kernel_weights(self):
        return sum(row.kernel_weights for row in self.rows)

    @property
    def auxiliary_ops(self):
        return sum(row.mult_adds for row in self.rows if not row.in_total)

    @property
    def uncounted(self):
        """Rows of layers the profiler could not count (kind `other`)."""
        return tuple(row for row in self.rows if row.kind == "other")

    def by_kind(self):
        """{kind: totals} in KINDS order; headline kinds also get their % share of mult-adds and kernel weights."""
        totals = {}
        for kind in KINDS:
            rows = [row for row in self.rows if row.kind == kind]
            if not rows:
                continue
            mult_adds, kernel_weights = sum(r.mult_adds for r in rows), sum(r.kernel_weights for r in rows)
            totals[kind] = {
                "layers": len(rows),
                "mult_adds": mult_adds,
                "params": sum(r.params for r in rows),
                "kernel_weights": kernel_weights,
            }
            if kind in HEADLINE_KINDS:
                totals[kind]["mult_adds_percent"] = 100 * mult_adds / max(self.mult_adds, 1)
                totals[kind]["kernel_weights_percent"] = 100 * kernel_weights / max(self.kernel_weights, 1)
        return totals

    def to_dict(self):
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "mult_adds": self.mult_adds,
            "flops": self.flops,
            "params": self.params,
            "kernel_weights": self.kernel_weights,
            "auxiliary_ops": self.auxiliary_ops,
            "by_kind": self.by_kind(),
            "layers": [row.to_dict() for row in self.rows],
        }

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)


_COUNTERS = {}


def register_counter(layer_class: type, counter: Callable) -> None:
    """Count `layer_class` (and its subclasses) with `counter(layer, input_shape, output_shape)`.

    The shapes exclude the batch axis (a tuple of shapes for a layer called on
    several inputs). The counter returns a LayerCost or a list of them (one layer
    may give several rows, as SeparableConv2D does); `name` is relative to the
    layer's parents, and fields left None are filled from the graph. A counter
    registered for a class replaces the one of its base classes. For example, a
    per-point 1x1 layer mixing M input into N output channels:

        register_counter(PointConv, lambda layer, input_shape, output_shape: LayerCost(
            layer.name, "pointwise", math.prod(output_shape) * input_shape[-1], params=layer.count_params()))
    """
    if not (isinstance(layer_class, type) and callable(counter)):
        raise ValueError(f"register_counter needs a class and a function. Received: layer_class={layer_class!r}")
    _COUNTERS[layer_class] = counter


def _counter_for(operation):
    return next((_COUNTERS[cls] for cls in type(operation).__mro__ if cls in _COUNTERS), None)


def _spatial(shape, data_format="channels_last"):
    spatial = shape[1:] if data_format == "channels_first" else shape[:-1]
    if any(size is None for size in spatial):
        raise ValueError(f"Counting needs a fixed input size; build the model with one. Received: shape={shape}")
    return spatial


def _kernel_row(layer, kernel, input_shape, output_shape, params, depthwise=False):
    """A convolution row: each kernel weight is used once per output position."""
    data_format = getattr(layer, "data_format", "channels_last")
    kernel = tuple(kernel.shape)
    kind = "depthwise" if depthwise else "standard" if math.prod(kernel[:-2]) > 1 else "pointwise"
    if kind == "pointwise" and math.prod(_spatial(input_shape, data_format)) == 1:
        kind = "dense"  # a 1x1 conv on a 1x1 input: the paper's fully connected layer
    rank = len(kernel) - 2
    return LayerCost(
        layer.name,
        kind,
        math.prod(kernel) * math.prod(_spatial(output_shape, data_format)),
        params=params,
        kernel_weights=math.prod(kernel),
        kernel=kernel[:rank],
        stride=tuple(getattr(layer, "strides", (1,) * rank)),
        dilation=tuple(getattr(layer, "dilation_rate", (1,) * rank)),
    )


def _convolution(layer, input_shape, output_shape):
    return _kernel_row(layer, layer.kernel, input_shape, output_shape, layer.count_params())


def _depthwise(layer, input_shape, output_shape):
    return _kernel_row(layer, layer.kernel, input_shape, output_shape, layer.count_params(), depthwise=True)


def _separable(layer, input_shape, output_shape):
    """Two rows: the depthwise kernel, then the pointwise one (with the bias)."""
    kernel = layer.depthwise_kernel
    channels = kernel.shape[-2] * kernel.shape[-1]
    first = layer.data_format == "channels_first"
    middle = (channels, *output_shape[1:]) if first else (*output_shape[:-1], channels)
    depthwise = _kernel_row(layer, kernel, input_shape, middle, math.prod(kernel.shape), depthwise=True)
    pointwise = _kernel_row(
        layer, layer.pointwise_kernel, middle, output_shape, layer.count_params() - depthwise.params
    )
    return [
        dataclasses.replace(depthwise, name=f"{layer.name}/depthwise", output_shape=middle),
        dataclasses.replace(pointwise, name=f"{layer.name}/pointwise", input_shape=middle, stride=None, dilation=None),
    ]


def _dense(layer, input_shape, output_shape):
    kernel_weights = math.prod(layer.kernel.shape)
    positions = math.prod(_spatial(input_shape))  # every leading axis of a rank > 2 input
    return LayerCost(
        layer.name, "dense", kernel_weights * positions, params=layer.count_params(), kernel_weights=kernel_weights
    )


def _per_element(kind):
    def counter(layer, input_shape, output_shape):
        return LayerCost(layer.name, kind, math.prod(output_shape), params=layer.count_params())

    return counter


def _pooling(layer, input_shape, output_shape):
    return LayerCost(layer.name, "pooling", math.prod(layer.pool_size) * math.prod(output_shape))


def _global_pooling(layer, input_shape, output_shape):
    return LayerCost(layer.name, "pooling", math.prod(input_shape))


def _elementwise(layer, input_shapes, output_shape):
    return LayerCost(layer.name, "elementwise", (len(input_shapes) - 1) * math.prod(output_shape))


def _layout(layer, input_shape, output_shape):
    return LayerCost(layer.name, "layout", 0, params=layer.count_params())


def count_pointwise_conv3d(layer, input_shape, output_shape):
    """Two rows for Hua et al.'s point-cloud convolution: the cell means (pooling: 27 * C divisions per
    point; the neighbour sums, C additions per point in a cell, depend on the cloud and are left out)
    and the kernel (27 * C * filters multiply-adds per point)."""
    points, channels = input_shape[0][0], input_shape[1][-1]
    averaging = LayerCost(
        f"{layer.name}/cell_means",
        "pooling",
        points * CELLS * channels,
        output_shape=(points, CELLS * channels),
        note="+ C additions per neighbour in a cell (data-dependent)",
    )
    kernel = LayerCost(
        layer.name,
        "standard",
        points * CELLS * channels * layer.filters,
        params=layer.count_params(),
        kernel_weights=CELLS * channels * layer.filters,
        kernel=(3, 3, 3),
        stride=(1, 1, 1),
        dilation=(layer.stride,) * 3,
        input_shape=(points, CELLS * channels),
    )
    return [averaging, kernel]


def _register_builtin_counters():

    families = {
        _convolution: ("Conv1D", "Conv2D", "Conv3D"),
        _depthwise: ("DepthwiseConv1D", "DepthwiseConv2D"),
        _separable: ("SeparableConv1D", "SeparableConv2D"),
        _dense: ("Dense",),
        _per_element("normalization"): ("BatchNormalization", "Normalization", "Rescaling"),
        _per_element("activation"): ("Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "PReLU"),
        _pooling: ("AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
        + ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D"),
        _global_pooling: ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D")
        + ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"),
        _elementwise: ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"),
        _layout: ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise")
        + ("GaussianDropout", "AlphaDropout", "Reshape", "Flatten", "Permute", "RepeatVector", "Identity")
        + ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D")
        + ("Concatenate",),
    }
    for counter, class_names in families.items():
        for class_name in class_names:
            register_counter(getattr(keras.layers, class_name), counter)
    register_counter(DepthwiseConv, _depthwise)
    register_counter(PointwiseConv, _convolution)
    register_counter(PointwiseConv3D, count_pointwise_conv3d)
    register_counter(SortPoints, _layout)


def _without_batch(shapes):
    shapes = [tuple(shape)[1:] for shape in shapes]
    return shapes[0] if len(shapes) == 1 else tuple(shapes)


def _calls(layer):
    """(operation, input shapes, output shapes) of each call inside `layer`, in graph order."""
    graph = layer._functional if isinstance(layer, keras.Sequential) else layer
    nodes_by_depth = getattr(graph, "_nodes_by_depth", None)
    if nodes_by_depth is not None:
        for depth in sorted(nodes_by_depth, reverse=True):
            for node in nodes_by_depth[depth]:
                if not node.is_input:
                    yield node.operation, [t.shape for t in node.input_tensors], [t.shape for t in node.outputs]
        return
    for sublayer in layer._flatten_layers(include_self=False, recursive=False):
        if not sublayer.built or sublayer._build_shapes_dict is None:
            raise ValueError(f"Profiling needs a built model. Received: unbuilt layer {sublayer.name!r}")
        input_shapes = list(sublayer._build_shapes_dict.values())
        yield sublayer, input_shapes, [sublayer.compute_output_shape(*input_shapes)]


def _rows(operation, input_shapes, output_shapes, prefix, seen):
    """The rows of one call; layers with sub-layers and no counter of their own are opened."""
    input_shape, output_shape = _without_batch(input_shapes), _without_batch(output_shapes)
    counter = _counter_for(operation)
    sublayers = getattr(operation, "_layers", None) or getattr(operation, "_nodes_by_depth", None)
    if counter is None and sublayers:
        for call in _calls(operation):
            yield from _rows(*call, prefix=f"{prefix}{operation.name}/", seen=seen)
        own = sum(math.prod(v.shape) for v in operation._trainable_variables + operation._non_trainable_variables)
        if own:
            yield LayerCost(f"{prefix}{operation.name}", "other", 0, params=own, note=f"own weights {NOT_COUNTED}")
        return
    if counter is None:
        params = operation.count_params() if isinstance(operation, keras.layers.Layer) and operation.built else 0
        rows = [LayerCost(operation.name, "other", 0, params=params, note=NOT_COUNTED)]
    else:
        result = counter(operation, input_shape, output_shape)
        rows = [result] if isinstance(result, LayerCost) else list(result)
    shared = id(operation) in seen
    seen.add(id(operation))
    for row in rows:
        row = dataclasses.replace(
            row,
            name=prefix + row.name,
            input_shape=input_shape if row.input_shape is None else row.input_shape,
            output_shape=output_shape if row.output_shape is None else row.output_shape,
            layer_class=row.layer_class or type(operation).__name__,
        )
        if shared:  # weights of a layer called again belong to its first call
            row = dataclasses.replace(row, params=0, kernel_weights=0, note="shared weights")
        yield row


def profile(model: keras.layers.Layer) -> Profile:
    """Count every layer of a built Keras model (functional, Sequential or subclassed) -> Profile."""
    if not isinstance(model, keras.layers.Layer) or not model.built:
        raise ValueError(f"profile() needs a built Keras model. Received: model={model!r}")
    seen = set()
    rows = tuple(row for call in _calls(model) for row in _rows(*call, prefix="", seen=seen))
    input_shape = tuple(model.inputs[0].shape)[1:] if getattr(model, "inputs", None) else ()
    return Profile(model.name, input_shape, rows)


_register_builtin_counters()
