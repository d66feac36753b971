"""TFLite export (fp32, float16, dynamic-range and full int8), run and checked with LiteRT.

Besides comparing outputs with Keras, the check reads the flatbuffer's operator
list: builtin ops only, one DEPTHWISE_CONV_2D and one CONV_2D per Keras
convolution, each depthwise directly followed by its pointwise CONV_2D,
BatchNorm folded (no MUL/ADD/SUB left) and ReLU6 fused into the convolution that
precedes it (no RELU6 op). For full int8, weights must be quantized per channel.
"""

import collections
import contextlib
import dataclasses
import io
import os
import warnings

import keras
import numpy as np

from mobilenet_sep.export.formats import MAX_TOP1_DROP, MIN_AGREEMENT, QUANTIZATIONS
from mobilenet_sep.export.verify import FLOAT32_TOLERANCE, AccuracyBounds, ExportError, finish_export, verify
from mobilenet_sep.layers import DepthwiseConv, DepthwiseSeparableConv, PointwiseConv
from mobilenet_sep.utils import checks
from mobilenet_sep.utils.files import check_output_path
from mobilenet_sep.utils.inputs import fixed_input_shape

TOLERANCES = {"none": FLOAT32_TOLERANCE, "float16": 1e-2, "dynamic": None, "int8": None}
"""Largest relative error against Keras that passes; the quantized modes are also (int8, dynamic: only)
judged by their accuracy bounds (`AccuracyBounds`): top-1 drop and agreement."""

CALIBRATION_SAMPLES = 200

UNFOLDED_OPS = frozenset(
    {"ADD", "SUB", "MUL", "DIV", "RSQRT", "SQRT", "RELU", "RELU6", "RELU_N1_TO_1", "MINIMUM", "MAXIMUM"}
)
"""Ops that, in a MobileNet graph, mean a BatchNorm was not folded or an activation not fused."""

QUANTIZE_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


@dataclasses.dataclass(frozen=True)
class TfliteOp:
    """One operator of the graph: its name, fused activation, and for convolutions the weights' scales."""

    name: str
    activation: str | None = None
    input_type: str | None = None
    weight_scales: int | None = None
    output_channels: int | None = None

    @property
    def label(self):
        """`CONV_2D+RELU6` for a convolution with a fused activation, else the name."""
        return self.name if self.activation in (None, "NONE") else f"{self.name}+{self.activation}"


def check_arguments(quantization, has_calibration, int8_io, batch_size):
    """The TFLite export rules, checked before any slow work."""
    if batch_size is not None and not (checks.is_int(batch_size) and batch_size == 1):
        raise ValueError(f"`batch_size` must be 1 (fixed) or None (dynamic). Received: batch_size={batch_size!r}")
    checks.choice(quantization, QUANTIZATIONS, "quantization")
    if quantization == "int8" and not has_calibration:
        raise ValueError(
            "Full int8 quantization needs representative data to calibrate (e.g. --data digits). "
            "Received: representative_images=None"
        )
    if int8_io and quantization != "int8":
        raise ValueError(f"int8 input/output needs quantization='int8'. Received: quantization={quantization!r}")


class Calibration:
    """The converter's representative dataset: up to `limit` single images from an array or an iterable of batches.

    `used` counts the images the converter drew, for the metadata.
    """

    def __init__(self, images, limit=CALIBRATION_SAMPLES):
        self.images, self.limit, self.used = images, limit, 0

    def __call__(self):
        batches = [self.images] if isinstance(self.images, np.ndarray) else self.images
        self.used = 0
        for batch in batches:
            for image in np.asarray(batch, "float32"):
                if self.used == self.limit:
                    return
                self.used += 1
                yield [image[None]]
        if self.used == 0:
            raise ValueError("The representative data holds no images. Received: representative_images=<empty>")


def convert_to_tflite(model, quantization="none", representative_images=None, int8_io=False, batch_size=1):
    """The model as a TFLite flatbuffer (bytes), builtin ops only.

    batch_size: 1, the fixed batch phones run, or None for a dynamic batch. With a
    fixed batch the converter sees static shapes and turns dilated (output
    stride 8 or 16) depthwise convolutions into DEPTHWISE_CONV_2D ops with
    BatchNorm folded; with a dynamic one they stay SPACE_TO_BATCH_ND ->
    DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND -> MUL, which the graph check flags.
    quantization: "none" (fp32), "float16" (fp16 weights), "dynamic" (int8 weights,
    float activations) or "int8" (full integer, calibrated on
    `representative_images`: a `Calibration`, an array or an iterable of image
    batches; weights per channel). `int8_io` makes an int8 model take and
    return int8 tensors instead of float32.
    """
    check_arguments(quantization, representative_images is not None, int8_io, batch_size)
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # A frozen tf.function of the model: weights become constants, so BatchNorm folds into the
    # convolutions and conversion takes a second instead of saving and reloading a SavedModel.
    signature = tf.TensorSpec((batch_size, *fixed_input_shape(model)), tf.float32, name="input")
    function = tf.function(lambda images: model(images, training=False)).get_concrete_function(signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [convert_variables_to_constants_v2(function)], tf.Module()
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        calibration = representative_images
        converter.representative_dataset = (
            calibration if isinstance(calibration, Calibration) else Calibration(calibration)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    # The converter may print the saved signature; keep the library quiet.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


class LiteRTRunner:
    """A LiteRT interpreter on `threads` threads: `runner(images) -> float outputs`, any number of images.

    A file with a fixed batch (`fixed_batch`, usually 1) runs the images
    `fixed_batch` at a time; a dynamic one in one call. int8 inputs and outputs
    are quantized and dequantized with the file's own scales. `native_input` and
    `invoke` split that work off, so timing measures the interpreter alone.
    """

    def __init__(self, content, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=content, num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        batch = int(self.input["shape_signature"][0])
        self.fixed_batch = None if batch == -1 else batch
        self.interpreter.allocate_tensors()
        self.batch_size = int(self.input["shape"][0])

    def native_input(self, images):
        images = np.asarray(images, "float32")
        if self.input["dtype"] == np.float32:
            return images
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(self.input["dtype"])

    def invoke(self, native_images):
        if self.fixed_batch is None:
            return self._invoke(native_images)
        if len(native_images) % self.fixed_batch:
            raise ValueError(
                f"This file takes batches of {self.fixed_batch} images. Received: batch_size={len(native_images)}"
            )
        step = self.fixed_batch
        return np.concatenate(
            [self._invoke(native_images[start : start + step]) for start in range(0, len(native_images), step)]
        )

    def _invoke(self, native_images):
        if len(native_images) != self.batch_size:
            self.interpreter.resize_tensor_input(self.input["index"], native_images.shape)
            self.interpreter.allocate_tensors()
            self.batch_size = len(native_images)
        self.interpreter.set_tensor(self.input["index"], native_images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def __call__(self, images):
        outputs = self.invoke(self.native_input(images))
        if self.output["dtype"] == np.float32:
            return outputs
        scale, zero_point = self.output["quantization"]
        return (outputs.astype("float32") - zero_point) * scale


def tflite_ops(content):
    """The graph's operators in execution order, as `TfliteOp`s (reads the flatbuffer, runs nothing)."""
    from ai_edge_litert import schema_py_generated as schema

    op_names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    activations = {code: name for name, code in vars(schema.ActivationFunctionType).items() if not name.startswith("_")}
    types = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
    options = {
        schema.BuiltinOptions.Conv2DOptions: schema.Conv2DOptions,
        schema.BuiltinOptions.DepthwiseConv2DOptions: schema.DepthwiseConv2DOptions,
    }
    flatbuffer = schema.Model.GetRootAs(content, 0)
    graph = flatbuffer.Subgraphs(0)
    ops = []
    for position in range(graph.OperatorsLength()):
        operator = graph.Operators(position)
        code = flatbuffer.OperatorCodes(operator.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        if name == "CUSTOM":
            name = f"CUSTOM:{code.CustomCode().decode()}"
        if operator.BuiltinOptionsType() not in options:
            ops.append(TfliteOp(name))
            continue
        table = operator.BuiltinOptions()
        conv_options = options[operator.BuiltinOptionsType()]()
        conv_options.Init(table.Bytes, table.Pos)
        weights = graph.Tensors(operator.Inputs(1))
        quantization = weights.Quantization()
        ops.append(
            TfliteOp(
                name,
                activation=activations[conv_options.FusedActivationFunction()],
                input_type=types[graph.Tensors(operator.Inputs(0)).Type()],
                weight_scales=quantization.ScaleLength() if quantization is not None else 0,
                output_channels=int(graph.Tensors(operator.Outputs(0)).Shape(3)),
            )
        )
    return ops


def _expected_layers(model):
    """(depthwise convolutions, other convolutions, ReLU6 activations) of the Keras model."""
    depthwise = convolutions = relu6 = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (DepthwiseConv, keras.layers.DepthwiseConv2D)):
            depthwise += 1
        elif isinstance(layer, (PointwiseConv, keras.layers.Conv2D)):
            convolutions += 1
        elif isinstance(layer, keras.layers.ReLU) and layer.max_value == 6 and layer.negative_slope == 0:
            relu6 += 1
        elif isinstance(layer, DepthwiseSeparableConv):
            relu6 += 2  # applied with ops.relu6 inside the block, not as layers
    return depthwise, convolutions, relu6


def check_tflite_graph(ops, model, quantization):
    """Problems (strings) of the op list against the Keras model; an empty list when the graph is as it should be."""
    problems = []
    names = [op.name for op in ops]
    foreign = sorted({name for name in names if name.startswith(("CUSTOM", "Flex", "UNKNOWN"))})
    if foreign:
        problems.append(f"non-builtin ops {foreign}")
    depthwise, convolutions, relu6 = _expected_layers(model)
    for op_name, expected in (("DEPTHWISE_CONV_2D", depthwise), ("CONV_2D", convolutions)):
        if names.count(op_name) != expected:
            problems.append(f"{names.count(op_name)} {op_name} ops for {expected} Keras layers")
    unfolded = sorted({name for name in names if name in UNFOLDED_OPS})
    if unfolded:
        problems.append(f"BatchNorm or activation left as separate ops {unfolded}")
    fused = sum(op.activation == "RELU6" for op in ops)
    if fused != relu6:
        problems.append(f"{fused} convolutions with fused RELU6 for {relu6} ReLU6 layers")
    compute = [name for name in names if name not in QUANTIZE_OPS]
    unpaired = sum(
        1
        for position, name in enumerate(compute)
        if name == "DEPTHWISE_CONV_2D" and compute[position + 1 : position + 2] != ["CONV_2D"]
    )
    if unpaired:
        problems.append(f"{unpaired} DEPTHWISE_CONV_2D ops not followed by their pointwise CONV_2D")
    if quantization == "int8":
        convs = [op for op in ops if op.weight_scales is not None]
        if any(op.input_type != "INT8" for op in convs):
            problems.append("convolutions with non-int8 inputs in a full int8 model")
        if any(op.weight_scales != op.output_channels for op in convs):
            problems.append("convolution weights not quantized per channel")
    return problems


def tflite_op_counts(ops):
    """{op name: count} of a `tflite_ops` list."""
    return dict(collections.Counter(op.name for op in ops))


def export_tflite(
    model,
    path,
    *,
    quantization="none",
    representative_images=None,
    int8_io=False,
    batch_size=1,
    evaluation=None,
    calibration_samples=CALIBRATION_SAMPLES,
    tolerance=None,
    max_top1_drop=MAX_TOP1_DROP,
    min_agreement=MIN_AGREEMENT,
    force=False,
    source=None,
    data_description=None,
):
    """Export `model` to a TFLite file at `path`, verified with LiteRT, plus `path.json`.

    The file takes a fixed batch of 1 unless `batch_size` is None (see `convert_to_tflite`).
    Outputs are compared with Keras on random inputs (fp32 and float16 must stay
    within `tolerance`, None for `TOLERANCES[quantization]`); `evaluation` =
    (images, labels) adds top-1 agreement and the accuracy delta. A quantized file
    must also lose at most `max_top1_drop` points of top-1 accuracy (where there are
    labels; None: no bound) and agree with Keras on at least `min_agreement` of the
    inputs (the evaluation images, else the random ones). A file that fails a check
    is not written unless `force`, which writes it marked as failed. `source` and
    `data_description` (where the calibration and evaluation data came from) go
    into the metadata.
    """
    bounds = AccuracyBounds(max_top1_drop, min_agreement) if quantization != "none" else None
    path = check_output_path(path)
    calibration = Calibration(representative_images, calibration_samples) if quantization == "int8" else None
    content = convert_to_tflite(model, quantization, calibration, int8_io, batch_size)
    ops = tflite_ops(content)
    try:
        runner = LiteRTRunner(content)
    except RuntimeError as error:  # LiteRT refuses the file itself (XNNPACK: "failed to prepare")
        reason, kind = " ".join(str(error).split()), "" if quantization == "none" else f" {quantization}"
        raise ExportError(
            f"The converted tflite{kind} file does not load in LiteRT ({reason}); nothing was written. "
            f"Received: out={os.fspath(path)!r}"
        ) from None
    verification = verify(
        runner,
        model,
        tolerance=TOLERANCES[quantization] if tolerance is None else tolerance,
        evaluation=evaluation,
        problems=check_tflite_graph(ops, model, quantization),
        bounds=bounds,
    )
    details = {
        "int8_io": int8_io,
        "batch_size": batch_size,
        "calibration": {"samples": calibration.used, "data": data_description} if calibration else None,
        "evaluation_data": data_description if evaluation is not None else None,
        "graph": {"ops": tflite_op_counts(ops), "sequence": [op.label for op in ops]},
    }
    return finish_export(
        model,
        os.fspath(path),
        content,
        format="tflite",
        quantization=quantization,
        verification=verification,
        force=force,
        source=source,
        details=details,
    )
