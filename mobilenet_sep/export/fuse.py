"""BatchNorm folded into the convolution before it: `fuse(model)`, the same outputs with fewer ops.

In inference BatchNorm is an affine map per channel, `y = gamma * (x - mean) / sqrt(var + eps) + beta`.
After a convolution `x = W * input + b` it becomes one convolution with a bias:

    W' = W * s (per output channel; a depthwise kernel per (channel, multiplier) column)
    b' = beta + (b - mean) * s,  where s = gamma / sqrt(var + eps)

computed in float64 and stored in the layer's dtype. The model is rebuilt layer by layer
with `keras.models.clone_model`: folded convolutions get `use_bias=True`, their BatchNorm and
every dropout layer (identity in inference) are left out, every other layer is a copy with the
same weights. ReLU6 stays a layer: with the BatchNorm gone from between them, TensorFlow's graph
optimizer runs convolution + bias + ReLU6 as one oneDNN kernel (`_MklNativeFusedConv2D`,
`_MklNativeFusedDepthwiseConv2dNative` on x86), where the unfused model runs the convolution,
BatchNorm's Mul and AddV2 and the ReLU6 as separate ops.
ZeroPadding2D before a "valid" convolution becomes "same" padding where the two are exactly equal.
"""

import math

import keras
import numpy as np
from keras.src.models.functional import Functional

from mobilenet_sep.layers import DepthwiseConv, PointwiseConv
from mobilenet_sep.zoo.inference_model import InferenceModel, is_inference_only

CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, DepthwiseConv, PointwiseConv)
"""Layers a following BatchNorm folds into: kernel (kh, kw, in, out) or depthwise (kh, kw, channels, multiplier)."""

DEPTHWISE = (keras.layers.DepthwiseConv2D, DepthwiseConv)

INFERENCE_IDENTITIES = (
    keras.layers.Dropout,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)
"""Layers that pass their input through unchanged in inference (SpatialDropout* are Dropouts)."""


class _Removed:
    """What a layer left out of the fused graph becomes: calling it returns its input."""


REMOVED = _Removed()


def _single_use(layer):
    return len(layer._inbound_nodes) == 1


def _graph(model):
    """(producer layer by output tensor id, consumer layers by input tensor id; model outputs count as consumers).

    Only layers called once produce (a shared layer is never folded), but every call consumes.
    """
    producers, consumers = {}, {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                consumers.setdefault(id(tensor), []).append(layer)
        if _single_use(layer) and not isinstance(layer, keras.layers.InputLayer):
            producers[id(layer.output)] = layer
    for tensor in keras.tree.flatten(model.outputs):
        consumers.setdefault(id(tensor), []).append(None)
    return producers, consumers


def _channel_axis(layer):
    return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else 3


def _foldable_convolution(batchnorm, producers, consumers):
    """The convolution `batchnorm` folds into, or None: its sole input, used by nothing else, with no activation."""
    if not _single_use(batchnorm) or len(batchnorm.input.shape) != 4:
        return None
    convolution = producers.get(id(batchnorm.input))
    if not isinstance(convolution, CONVOLUTIONS) or consumers[id(batchnorm.input)] != [batchnorm]:
        return None
    activation = getattr(convolution, "activation", None)
    if activation not in (None, keras.activations.linear):
        return None
    return convolution if batchnorm.axis % 4 == _channel_axis(convolution) else None


def _same_padding(size, kernel, stride, dilation):
    """(before, after) zeros that "same" padding adds along one axis of `size` (TensorFlow's rule: extra at the end)."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return (total // 2, total - total // 2)


def _equals_same_padding(padding_layer, producers, consumers):
    """The "valid" convolution after `padding_layer` when the padding is exactly what "same" would add, else None."""
    consumer = consumers.get(id(padding_layer.output), [None])
    convolution = consumer[0]
    if (
        len(consumer) != 1
        or not isinstance(convolution, CONVOLUTIONS)
        or not _single_use(convolution)
        or getattr(convolution, "padding", "valid") != "valid"
        or not hasattr(convolution, "kernel_size")
        or padding_layer.data_format != "channels_last"
        or _channel_axis(convolution) != 3
    ):
        return None
    sizes = padding_layer.input.shape[1:3]
    if None in sizes:
        return None
    same = tuple(
        _same_padding(size, kernel, stride, dilation)
        for size, kernel, stride, dilation in zip(
            sizes, convolution.kernel_size, convolution.strides, convolution.dilation_rate, strict=True
        )
    )
    return convolution if tuple(map(tuple, padding_layer.padding)) == same else None


def _plan(model):
    """What fuse does to each layer: {conv: batchnorm}, {conv names made "same"}, removed names, unfolded names."""
    producers, consumers = _graph(model)
    folds, same, removed, unfolded = {}, set(), [], []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            convolution = _foldable_convolution(layer, producers, consumers)
            if convolution is None:
                unfolded.append(layer.name)
            else:
                folds[convolution.name] = layer
                removed.append(layer.name)
        elif isinstance(layer, INFERENCE_IDENTITIES):
            removed.append(layer.name)
        elif isinstance(layer, keras.layers.ZeroPadding2D) and _single_use(layer):
            convolution = _equals_same_padding(layer, producers, consumers)
            if convolution is not None:
                same.add(convolution.name)
                removed.append(layer.name)
        elif any(isinstance(inner, keras.layers.BatchNormalization) for inner in layer._flatten_layers()):
            unfolded.append(layer.name)  # a block or nested model holding BatchNorm stays as it is
    return folds, same, removed, unfolded


def folded_weights(convolution, batchnorm):
    """[kernel, bias] of `convolution` with `batchnorm` (inference) folded in: float64 arithmetic, kernel's dtype."""

    def array(variable):
        return keras.ops.convert_to_numpy(variable).astype(np.float64)

    kernel = array(convolution.kernel)
    channels = kernel.shape[2] * kernel.shape[3] if isinstance(convolution, DEPTHWISE) else kernel.shape[3]
    gamma = array(batchnorm.gamma) if batchnorm.scale else np.ones(channels)
    beta = array(batchnorm.beta) if batchnorm.center else np.zeros(channels)
    bias = array(convolution.bias) if convolution.bias is not None else np.zeros(channels)
    scale = gamma / np.sqrt(array(batchnorm.moving_variance) + batchnorm.epsilon)
    folded_bias = beta + (bias - array(batchnorm.moving_mean)) * scale
    folded_kernel = kernel * (scale.reshape(kernel.shape[2:]) if isinstance(convolution, DEPTHWISE) else scale)
    dtype = keras.backend.standardize_dtype(convolution.kernel.dtype)
    return [folded_kernel.astype(dtype), folded_bias.astype(dtype)]


def can_fuse(model) -> bool:
    """True for the models `fuse` takes: functional Keras models (not Sequential, not subclassed)."""
    return isinstance(model, Functional) and not isinstance(model, keras.Sequential)


def fuse(model: keras.Model) -> InferenceModel:
    """A new, inference-only model computing what `model(x, training=False)` computes, BatchNorm folded.

    Every Conv2D, DepthwiseConv2D, DepthwiseConv or PointwiseConv followed by a BatchNormalization
    (on its channel axis, and nothing else reading the convolution's output) becomes one
    convolution with a bias; dropout layers are left out. `model` is not changed. The result's
    `fusion` lists the pairs `folded`, the layers `removed`, the convolutions given "same"
    padding and the BatchNorm layers (or blocks holding them) left `unfolded`.
    """
    if not can_fuse(model):
        raise ValueError(
            "fuse takes a functional keras.Model (a zoo model or a .keras file saved by train). "
            f"Received: model={getattr(model, 'name', model)!r} ({type(model).__name__})"
        )
    folds, same, removed, unfolded = _plan(model)
    originals, clones = {layer.name: layer for layer in model.layers}, {}

    def clone(layer):
        if layer.name in removed:
            return REMOVED
        config = layer.get_config()
        if layer.name in folds:
            config["use_bias"] = True
        if layer.name in same:
            config["padding"] = "same"
        clones[layer.name] = type(layer).from_config(config)
        return clones[layer.name]

    def call(layer, *args, **kwargs):
        return args[0] if layer is REMOVED else layer(*args, **kwargs)

    rebuilt = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for name, layer in clones.items():
        weights = folded_weights(originals[name], folds[name]) if name in folds else originals[name].get_weights()
        layer.set_weights(weights)
    name = model.name if is_inference_only(model) else f"{model.name}_fused"
    fused = InferenceModel(rebuilt.input, rebuilt.output, name=name)
    fused.fusion = {
        "source": model.name,
        "folded": [[convolution, batchnorm.name] for convolution, batchnorm in folds.items()],
        "same_padding": sorted(same),
        "removed": removed,
        "unfolded": unfolded,
    }
    return fused
