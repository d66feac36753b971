"""The fair twin: the other member of a MobileNetV1 pair (separable <-> standard convolution), same everything else.

A speed-up means something only between two models that differ in one thing. `twin(model)` reads every
builder argument back from a built MobileNetV1 (ours or keras.applications', by its layer names):
input shape, classes, head, dropout, classifier activation, output stride, width, depth multiplier,
BatchNorm momentum; then builds the other kind with `MobileNetV1(separable=...)`, the one twin
builder. `twin(name, **overrides)` does the same for a zoo name and its overrides, without building
the model first. The twin is untrained (no `weights`): it is counted and timed, not evaluated.
"""

import math

import keras

from mobilenet_sep.zoo import registry
from mobilenet_sep.zoo.mobilenet_v1 import SEPARABLE_BLOCKS, MobileNetV1

_BLOCKS = range(1, len(SEPARABLE_BLOCKS) + 1)
_POOLINGS = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}


def twin(model_or_name: "keras.Model | str", **overrides) -> keras.Model:
    """The standard-conv twin of a separable MobileNetV1 (or the separable twin of a standard one).

    `model_or_name` is a built model (overrides are not allowed: the model says what it is) or a zoo
    name whose `overrides` (classes=10, input_shape=..., ...) the twin shares.
    """
    return _twin(model_or_name, overrides)[0]


def pair(model_or_name: "keras.Model | str", **overrides) -> tuple[keras.Model, keras.Model]:
    """(separable, standard): the model given (or built from the zoo name and overrides) and its twin, in that order."""
    other, given_separable = _twin(model_or_name, overrides)
    given = registry.create_model(model_or_name, **overrides) if isinstance(model_or_name, str) else model_or_name
    return (given, other) if given_separable else (other, given)


def _twin(model_or_name, overrides):
    """(the twin, whether the model given is the separable one)."""
    if isinstance(model_or_name, str):
        registry.twin_names(model_or_name)  # only the zoo's MobileNets have a twin
        arguments = registry.get_entry(model_or_name).arguments(**overrides)
        name = None  # the zoo's naming: conv_mobilenet_v1_0.5_160
    else:
        if overrides:
            key, value = next(iter(overrides.items()))
            raise ValueError(f"The twin of a built model is built as that model is. Received: {key}={value!r}")
        arguments = builder_arguments(model_or_name)
        name = _twin_name(model_or_name.name, arguments["separable"])
    twin_arguments = {**arguments, "separable": not arguments["separable"], "name": name, "weights": None}
    return MobileNetV1(**twin_arguments), arguments["separable"]


def _twin_name(name, separable):
    """`conv_` + the separable model's name; the standard model's name without it (or + `_separable`)."""
    if separable:
        return f"conv_{name}"
    return name.removeprefix("conv_") if name.startswith("conv_") else f"{name}_separable"


def builder_arguments(model: keras.Model) -> dict:
    """The `MobileNetV1` arguments that rebuild `model`'s architecture, read from its layers.

    Raises ValueError when the model is not a MobileNetV1 (by keras.applications' layer names) or
    when the arguments read back do not rebuild it layer for layer.
    """
    layers = {layer.name: layer for layer in model.layers}
    separable = "conv_pw_1" in layers
    convolutions = [f"conv_pw_{block}" if separable else f"conv_{block}" for block in _BLOCKS]
    spatial_names = [f"conv_dw_{block}" if separable else f"conv_{block}" for block in _BLOCKS]
    missing = [name for name in ("conv1", "conv1_bn", *spatial_names, *convolutions) if name not in layers]
    if missing:
        raise ValueError(
            f"Only a MobileNetV1 has a twin (no layer {missing[0]!r} in this model). Received: model={model.name!r}"
        )
    spatial = [layers[name] for name in ("conv1", *spatial_names)]
    widths = [layers["conv1"].filters] + [layers[name].filters for name in convolutions]
    arguments = {
        # Widths are max(min_depth, int(channels * alpha)) for channels 1024 / 2^k: width_13 / 1024
        # floors to the same widths as alpha itself, and the narrowest width is the floor or below it.
        "alpha": widths[-1] / SEPARABLE_BLOCKS[-1][0],
        "min_depth": min(widths),
        "depth_multiplier": layers["conv_dw_1"].depth_multiplier if separable else 1,
        "input_shape": tuple(model.input_shape[1:]),
        "output_stride": _output_stride(spatial),
        "separable": separable,
        "batchnorm_momentum": layers["conv1_bn"].momentum,
        "include_top": "conv_preds" in layers,
    }
    if arguments["include_top"]:
        arguments["classes"] = layers["conv_preds"].filters
        arguments["dropout"] = layers["dropout"].rate
        arguments["classifier_activation"] = _activation(layers["predictions"])
    else:
        poolings = [kind for kind, type_ in _POOLINGS.items() if any(isinstance(layer, type_) for layer in model.layers)]
        arguments["pooling"] = poolings[0] if poolings else None
    _check_rebuilds(model, arguments)
    return arguments


def _activation(layer):
    name = keras.activations.serialize(layer.activation)
    name = name if isinstance(name, str) else name.get("config", {}).get("name", name)
    return None if name == "linear" else name


def _output_stride(layers):
    """None when no layer dilates (the natural stride 32), else the running stride where dilation starts."""
    if all(tuple(layer.dilation_rate)[0] == 1 for layer in layers):
        return None
    return math.prod(tuple(layer.strides)[0] for layer in layers)  # strides stay 1 once dilation starts


def _check_rebuilds(model, arguments):
    """The arguments must rebuild the model: the same output shape of every layer both name, the same parameters."""
    rebuilt = MobileNetV1(**arguments)
    given = {layer.name: layer for layer in model.layers}
    differing = [
        layer.name
        for layer in rebuilt.layers
        if layer.name in given and tuple(layer.output.shape) != tuple(given[layer.name].output.shape)
    ]
    if differing or rebuilt.count_params() != model.count_params() or rebuilt.output_shape != model.output_shape:
        where = f"layer {differing[0]!r}" if differing else "parameter count or output"
        raise ValueError(
            f"This model is not a MobileNetV1 the builder can make (its {where} differs); it has no twin. "
            f"Received: model={model.name!r}"
        )

