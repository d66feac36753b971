"""Export a Keras model to ONNX or TFLite, checked against Keras before anything is written.

`export_model(model, path, format=...)` is the one door the CLI uses; the formats live
in `export_onnx` and `export_tflite`, what they share in `export_common`.
"""

import numpy as np

from mobilenet_sep.export_common import ExportError, ExportResult, Verification
from mobilenet_sep.export_onnx import DEFAULT_OPSET, OnnxRunner, convert_to_onnx, export_onnx
from mobilenet_sep.export_tflite import (
    QUANTIZATIONS,
    Calibration,
    LiteRTRunner,
    check_tflite_graph,
    convert_to_tflite,
    export_tflite,
    tflite_ops,
)

FORMATS = ("onnx", "tflite")
EVALUATION_LIMIT = 2000
"""Most test examples an exported file is evaluated on: enough for a top-1 delta to a fraction of a point."""

__all__ = [
    "DEFAULT_OPSET",
    "FORMATS",
    "QUANTIZATIONS",
    "Calibration",
    "ExportError",
    "ExportResult",
    "LiteRTRunner",
    "OnnxRunner",
    "Verification",
    "check_tflite_graph",
    "convert_to_onnx",
    "convert_to_tflite",
    "default_output_path",
    "export_data",
    "export_model",
    "export_onnx",
    "export_tflite",
    "tflite_ops",
]


def default_output_path(model, format, quantization="none"):
    """`mobilenet_v1_1.0_224.onnx`, `mobilenet_v1_1.0_224.tflite`, `mobilenet_v1_1.0_224_int8.tflite`."""
    suffix = "" if quantization == "none" else f"_{quantization}"
    return f"{model.name}{suffix}.{format}"


def export_model(
    model,
    path=None,
    format="tflite",
    *,
    quantization="none",
    int8_io=False,
    batch_size=1,
    opset=DEFAULT_OPSET,
    representative_images=None,
    evaluation=None,
    force=False,
    source=None,
    data_description=None,
):
    """Export `model` as `format` ("onnx" or "tflite") to `path` (default: `default_output_path`).

    See `export_onnx` and `export_tflite` for the checks. ONNX files take any batch
    and no quantization; TFLite files a fixed `batch_size` of 1 (None: dynamic).
    Returns an `ExportResult`; raises `ExportError` (a ValueError) when the file
    fails its check and `force` is off.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(FORMATS)}. Received: format={format!r}")
    if format == "onnx" and (quantization != "none" or int8_io):
        raise ValueError(
            f"ONNX export takes no quantization. Received: quantization={quantization!r}, int8_io={int8_io}"
        )
    path = default_output_path(model, format, quantization) if path is None else path
    common = {"evaluation": evaluation, "force": force, "source": source, "data_description": data_description}
    if format == "onnx":
        return export_onnx(model, path, opset=opset, **common)
    return export_tflite(
        model,
        path,
        quantization=quantization,
        representative_images=representative_images,
        int8_io=int8_io,
        batch_size=batch_size,
        **common,
    )


def export_data(spec, model, limit=EVALUATION_LIMIT, calibrate=True):
    """The data an export uses from dataset `spec`: (calibration, (evaluation images, labels or None), description).

    With `calibrate`, the train split's images, shuffled with a fixed seed so that
    every class is seen, calibrate int8 (a tf.data of image batches; else None).
    Up to `limit` test examples (all of them, in order, when there are fewer;
    else a seeded shuffle) measure top-1 agreement and the accuracy delta. Labels
    are dropped when the dataset's classes do not match the model's outputs:
    agreement still means something, accuracy would not.
    """
    from mobilenet_sep import data

    def shuffled(split):
        options = data.DataOptions(split=split, input_shape=shape, batch_size=32, training=True, augment="none")
        return data.load_dataset(spec, options).epoch(0)

    shape = tuple(model.input_shape[1:])
    test = data.load_dataset(spec, data.DataOptions(split="test", input_shape=shape, batch_size=32))
    batches = test.dataset if test.num_examples <= limit else shuffled("test")
    images, labels = [], []
    for batch_images, batch_labels in batches.take(-(-limit // 32)):
        images.append(np.asarray(batch_images))
        labels.append(np.asarray(batch_labels))
    labels = np.concatenate(labels)[:limit]
    if test.num_classes != model.output_shape[-1]:
        labels = None
    calibration = shuffled("train").map(lambda batch_images, batch_labels: batch_images) if calibrate else None
    description = f"{spec}: {'train split calibrates, ' if calibrate else ''}test split evaluates"
    return calibration, (np.concatenate(images)[:limit], labels), description
