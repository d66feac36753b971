"""Export a Keras model to ONNX, TFLite or a (fused) .keras file, checked against Keras before anything is written.

`export_model(model, path, format=...)` is the one door the CLI uses; the formats live
in `to_onnx`, `to_tflite` and `to_keras`, what they share (checks, metadata, the atomic finish) in `verify`.
"""

import numpy as np

from mobilenet_sep import data
from mobilenet_sep.export.formats import DEFAULT_OPSET, FORMATS, MAX_TOP1_DROP, MIN_AGREEMENT
from mobilenet_sep.export.to_keras import export_keras
from mobilenet_sep.export.to_onnx import export_onnx
from mobilenet_sep.export.to_tflite import check_arguments as check_tflite_arguments
from mobilenet_sep.export.to_tflite import export_tflite
from mobilenet_sep.export.verify import AccuracyBounds, ExportResult
from mobilenet_sep.utils import checks

EVALUATION_LIMIT = 2000
"""Most test examples an exported file is evaluated on: enough for a top-1 delta to a fraction of a point."""

def default_output_path(model, format, quantization="none", fuse=False):
    """`mobilenet_v1_1.0_224.onnx`, `mobilenet_v1_1.0_224_int8.tflite`, `mobilenet_v1_1.0_224_fused.keras`."""
    suffix = ("" if quantization == "none" else f"_{quantization}") + ("_fused" if fuse else "")
    return f"{model.name}{suffix}.{format}"


def check_arguments(
    format,
    quantization="none",
    int8_io=False,
    batch_size=1,
    has_calibration=True,
    max_top1_drop=MAX_TOP1_DROP,
    min_agreement=MIN_AGREEMENT,
    fuse=False,
):
    """Every export rule, at once, before the slow work: the CLI calls it before loading data."""
    checks.choice(format, FORMATS, "format")
    AccuracyBounds(max_top1_drop, min_agreement)
    if fuse and format != "keras":
        raise ValueError(
            "ONNX files are converted fused already and the TFLite converter folds BatchNorm itself; "
            "fuse applies to the keras format. "
            f"Received: fuse=True, format={format!r}"
        )
    if format == "keras" and (quantization != "none" or int8_io):
        raise ValueError(
            f"Keras export takes no quantization. Received: quantization={quantization!r}, int8_io={int8_io}"
        )
    if format == "onnx" and (quantization != "none" or int8_io):
        raise ValueError(
            f"ONNX export takes no quantization. Received: quantization={quantization!r}, int8_io={int8_io}"
        )
    if format == "tflite":
        check_tflite_arguments(quantization, has_calibration, int8_io, batch_size)


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
    max_top1_drop=MAX_TOP1_DROP,
    min_agreement=MIN_AGREEMENT,
    fuse=False,
    force=False,
    source=None,
    data_description=None,
):
    """Export `model` as `format` ("onnx", "tflite" or "keras") to `path` (default: `default_output_path`).

    See `export_onnx`, `export_tflite` and `export_keras` for the checks. ONNX files take any batch
    and no quantization; TFLite files a fixed `batch_size` of 1 (None: dynamic); with `fuse`, a
    `.keras` file holds `fuse(model)`, BatchNorm folded, for inference.
    Quantized files are held to `max_top1_drop` (points of top-1 accuracy on the
    labelled `evaluation` data) and `min_agreement` (top-1 agreement with Keras).
    Returns an `ExportResult`; raises `ExportError` (a ValueError) when the file
    fails its check and `force` is off.
    """
    bounds = {"max_top1_drop": max_top1_drop, "min_agreement": min_agreement}
    check_arguments(format, quantization, int8_io, batch_size, representative_images is not None, **bounds, fuse=fuse)
    path = default_output_path(model, format, quantization, fuse) if path is None else path
    common = {"evaluation": evaluation, "force": force, "source": source, "data_description": data_description}
    if format == "keras":
        return export_keras(model, path, fuse=fuse, **common)
    if format == "onnx":
        return export_onnx(model, path, opset=opset, **common)
    return export_tflite(
        model,
        path,
        quantization=quantization,
        representative_images=representative_images,
        int8_io=int8_io,
        batch_size=batch_size,
        **bounds,
        **common,
    )


def export_data(spec, model, limit=EVALUATION_LIMIT, calibrate=True, calibration_spec=None):
    """The data an export uses: (calibration, (evaluation images, labels or None) or None, description).

    With `calibrate`, the train split of `calibration_spec` (default: `spec`), shuffled
    with a fixed seed so that every class is seen, calibrates int8 (a tf.data of image
    batches; else None). Up to `limit` test examples of `spec` (all of them, in order,
    when there are fewer; else a seeded shuffle) measure top-1 agreement and the
    accuracy delta; `spec` None: no evaluation data. Labels are dropped when the
    dataset's classes do not match the model's outputs: agreement still means
    something, accuracy would not. Calibrating on one set and checking on another
    shows what a poor calibration set costs.
    """
    shape = tuple(model.input_shape[1:])
    calibration_spec = calibration_spec or spec
    if calibrate and calibration_spec is None:
        raise ValueError("int8 calibration needs a dataset (data or calibration_spec). Received: calibration_spec=None")
    calibration = _shuffled(calibration_spec, "train", shape).map(_images) if calibrate else None
    parts = [f"{calibration_spec}: train split calibrates"] if calibrate else []
    evaluation = None
    if spec is not None:
        evaluation = _evaluation_data(spec, model, shape, limit)
        parts.append(f"{spec}: test split evaluates")
    return calibration, evaluation, "; ".join(parts) or None


def _images(images, labels):
    return images


def _shuffled(spec, split, shape):
    options = data.DataOptions(split=split, input_shape=shape, batch_size=32, training=True, augment="none")
    return data.load_dataset(spec, options).epoch(0)


def _evaluation_data(spec, model, shape, limit):
    """Up to `limit` (images, labels or None) of `spec`'s test split."""
    test = data.load_dataset(spec, data.DataOptions(split="test", input_shape=shape, batch_size=32))
    batches = test.dataset if test.num_examples <= limit else _shuffled(spec, "test", shape)
    images, labels = [], []
    for batch_images, batch_labels in batches.take(-(-limit // 32)):
        images.append(np.asarray(batch_images))
        labels.append(np.asarray(batch_labels))
    labels = np.concatenate(labels)[:limit] if test.num_classes == model.output_shape[-1] else None
    return np.concatenate(images)[:limit], labels
