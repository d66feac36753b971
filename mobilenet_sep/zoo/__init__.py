"""The model zoo: MobileNetV1 and its twin, the point-cloud network, and the registry that names them.

Importing the package registers every builder, so `create_model(name)` finds them all.
"""

from mobilenet_sep.zoo.inference_model import InferenceModel, check_trainable, is_inference_only
from mobilenet_sep.zoo.mobilenet_v1 import MobileNetV1
from mobilenet_sep.zoo.pointwise_cnn import PointwiseCNN
from mobilenet_sep.zoo.registry import (
    BUILDERS,
    ModelEntry,
    catalogue,
    create_model,
    get_entry,
    list_models,
    load_model,
    register_builder,
    twin_names,
)
from mobilenet_sep.zoo.twin import pair, twin

__all__ = [
    "BUILDERS",
    "InferenceModel",
    "MobileNetV1",
    "ModelEntry",
    "PointwiseCNN",
    "catalogue",
    "check_trainable",
    "create_model",
    "get_entry",
    "is_inference_only",
    "list_models",
    "load_model",
    "pair",
    "register_builder",
    "twin",
    "twin_names",
]
