"""mobilenet-sep: MobileNetV1 and depthwise-separable convolution for Keras 3.

The public names load on first use, so `import mobilenet_sep` and the CLI's
`--help` stay fast; TensorFlow is imported only when a model is touched.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "DepthwiseConv": "layers",
    "PointwiseConv": "layers",
    "DepthwiseSeparableConv": "layers",
    "PointwiseConv3D": "layers",
    "MobileNetV1": "zoo",
    "PointwiseCNN": "zoo",
    "list_models": "zoo",
    "create_model": "zoo",
    "load_model": "zoo",
    "get_entry": "zoo",
    "twin": "zoo",
    "profile": "profiler",
    "export_model": "export.exporter",
    "fuse": "export.fuse",
    "measure_model": "speed.measure",
    "load_dataset": "data",
    "DataOptions": "data",
    "load_recipe": "train.recipe",
}
"""Public name -> the module (under `mobilenet_sep.`) that defines or re-exports it."""

__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mobilenet_sep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mobilenet_sep.{_EXPORTS[name]}"), name)


def __dir__():
    return sorted(list(globals()) + __all__)
