"""`fuse`: BatchNorm folded into the convolutions, same outputs over the zoo grid, inference only, saved and exported."""

import json

import keras
import numpy as np
import pytest

import mobilenet_sep
from helpers import randomize_batchnorm, relative_error
from mobilenet_sep.cli import main
from mobilenet_sep.export.fuse import fuse
from mobilenet_sep.export.to_onnx import convert_to_onnx, onnx_op_counts
from mobilenet_sep.export.to_tflite import check_tflite_graph, convert_to_tflite, tflite_ops
from mobilenet_sep.layers import DepthwiseConv, DepthwiseSeparableConv
from mobilenet_sep.zoo import InferenceModel, is_inference_only

TOLERANCE = 1e-5

GRID = {
    "alpha 0.25": ("mobilenet_v1_0.25_128", (32, 32, 3), {}),
    "alpha 0.5": ("mobilenet_v1_0.5_128", (32, 32, 3), {}),
    "alpha 0.75": ("mobilenet_v1_0.75_128", (32, 32, 3), {}),
    "alpha 1.0": ("mobilenet_v1_1.0_128", (32, 32, 3), {}),
    "output stride 8": ("mobilenet_v1_0.25_128", (64, 64, 3), {"output_stride": 8}),
    "output stride 16": ("mobilenet_v1_0.25_128", (64, 64, 3), {"output_stride": 16}),
    "output stride 32": ("mobilenet_v1_0.25_128", (64, 64, 3), {"output_stride": 32}),
    "non-square": ("mobilenet_v1_0.25_128", (32, 48, 3), {}),
    "any size": ("mobilenet_v1_0.25_128", None, {}),
    "twin": ("conv_mobilenet_v1_0.25_128", (32, 32, 3), {}),
    "depth multiplier 2": ("mobilenet_v1_0.25_128", (32, 32, 3), {"depth_multiplier": 2}),
    "no top": ("mobilenet_v1_0.25_128", (32, 32, 3), {"include_top": False}),
    "no top, avg pooling": ("mobilenet_v1_0.25_128", (32, 32, 3), {"include_top": False, "pooling": "avg"}),
    "no top, max pooling": ("mobilenet_v1_0.5_128", (32, 40, 3), {"include_top": False, "pooling": "max"}),
}


def _model(name="mobilenet_v1_0.25_128", input_shape=(32, 32, 3), seed=0, **overrides):
    """A small zoo model with logits and random BatchNorm statistics, gamma and beta: its outputs are not constant."""
    model = mobilenet_sep.create_model(
        name, input_shape=input_shape, classes=10, classifier_activation=None, **overrides
    )
    return randomize_batchnorm(model, seed)


def _images(shape, count=4, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (count, *shape)).astype("float32")


def _layer_types(model):
    return {type(layer) for layer in model.layers}


@pytest.mark.parametrize("case", list(GRID))
def test_fused_outputs_equal_the_original_over_the_zoo_grid(case):
    name, input_shape, overrides = GRID[case]
    model = _model(name, input_shape, **overrides)
    fused = fuse(model)
    images = _images(input_shape[:2] + (3,) if input_shape else (32, 40, 3))
    expected = np.asarray(model(images, training=False))
    assert relative_error(fused(images), expected) <= TOLERANCE
    assert np.std(expected) > 0.1  # the check has teeth: outputs vary
    batchnorms = [layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert sorted(batchnorm for _, batchnorm in fused.fusion["folded"]) == sorted(batchnorms)
    assert fused.fusion["unfolded"] == []
    assert not _layer_types(fused) & {keras.layers.BatchNormalization, keras.layers.Dropout}
    assert is_inference_only(fused) and fused.name == f"{model.name}_fused"


def test_folding_keeps_an_existing_bias_and_keras_depthwise_multiplier_columns(rng):
    """Keras' own Conv2D (with a bias) and DepthwiseConv2D (multiplier 3) fold as ours do."""
    inputs = keras.Input((12, 12, 4))
    x = keras.layers.Conv2D(6, 3, use_bias=True, bias_initializer="random_normal", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="conv_bn", epsilon=0.01)(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=3, name="depthwise")(x)
    x = keras.layers.BatchNormalization(name="depthwise_bn", center=False)(x)
    x = DepthwiseConv(3, depth_multiplier=2, name="ours")(x)
    x = keras.layers.BatchNormalization(name="ours_bn", scale=False)(x)
    model = randomize_batchnorm(keras.Model(inputs, x))
    images = rng.uniform(-1, 1, (3, 12, 12, 4)).astype("float32")
    fused = fuse(model)
    assert relative_error(fused(images), model(images, training=False)) <= TOLERANCE
    assert fused.fusion["folded"] == [["conv", "conv_bn"], ["depthwise", "depthwise_bn"], ["ours", "ours_bn"]]


def test_what_cannot_be_folded_stays_and_is_listed(rng):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.BatchNormalization(name="input_bn")(inputs)  # no convolution before it
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same", name="activated")(x)
    x = keras.layers.BatchNormalization(name="after_activation_bn")(x)  # the ReLU sits between them
    shared = keras.layers.Conv2D(8, 1, name="shared_output")(x)
    x = keras.layers.BatchNormalization(name="branch_bn")(shared)  # the convolution's output is also used below
    x = keras.layers.Add(name="add")([x, shared])
    tapped = keras.layers.Conv2D(8, 1, name="tapped")(x)
    x = keras.layers.BatchNormalization(name="tapped_bn")(tapped)
    relu = keras.layers.ReLU(name="shared_relu")  # called twice: once on the convolution's own output
    x = keras.layers.Add(name="add_shared")([relu(x), relu(tapped)])
    x = DepthwiseSeparableConv(8, name="block")(x)  # a block holding BatchNorm inside
    x = keras.layers.SpatialDropout2D(0.5, name="spatial_dropout")(x)
    model = randomize_batchnorm(keras.Model(inputs, x))
    fused = fuse(model)
    images = rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    assert relative_error(fused(images), model(images, training=False)) <= TOLERANCE
    assert fused.fusion["folded"] == []
    assert fused.fusion["unfolded"] == ["input_bn", "after_activation_bn", "branch_bn", "tapped_bn", "block"]
    assert fused.fusion["removed"] == ["spatial_dropout"]


def test_zero_padding_becomes_same_only_where_exactly_equal():
    """Stride-2 layers on an even size pad (0, 1) as "same" does; on an odd size "same" pads (1, 1)."""
    fused = fuse(_model(input_shape=(32, 48, 3)))  # sizes at the padded layers: 16x24, 8x12, 4x6, 2x3
    assert fused.fusion["same_padding"] == ["conv_dw_2", "conv_dw_4", "conv_dw_6"]
    assert {"conv_pad_2", "conv_pad_4", "conv_pad_6"} <= set(fused.fusion["removed"])
    assert fused.get_layer("conv_dw_2").padding == "same" and fused.get_layer("conv_dw_12").padding == "valid"
    assert fused.get_layer("conv_pad_12") is not None
    assert fuse(_model(input_shape=None)).fusion["same_padding"] == []  # sizes unknown: nothing is assumed


def test_the_input_model_is_untouched():
    model = _model()
    weights = [np.array(weight) for weight in model.get_weights()]
    layers = [layer.name for layer in model.layers]
    images = _images((32, 32, 3))
    before = np.asarray(model(images, training=False))
    fused = fuse(model)
    fused.layers[1].kernel.assign(np.zeros(fused.layers[1].kernel.shape))  # the copy owns its weights
    assert [layer.name for layer in model.layers] == layers
    assert all(np.array_equal(old, new) for old, new in zip(weights, model.get_weights(), strict=True))
    np.testing.assert_array_equal(model(images, training=False), before)
    assert not is_inference_only(model)


def test_the_fused_model_round_trips_through_a_keras_file(tmp_path):
    model = _model()
    trained_file = tmp_path / "final.keras"  # as `train` saves its models
    model.save(trained_file)
    fused = fuse(mobilenet_sep.load_model(str(trained_file)))
    fused.save(tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", safe_mode=True)
    images = _images((32, 32, 3))
    assert isinstance(loaded, InferenceModel) and loaded.fusion == fused.fusion
    np.testing.assert_array_equal(loaded(images), fused(images))
    assert relative_error(loaded(images), model(images, training=False)) <= TOLERANCE


def test_training_refuses_a_fused_model_in_one_line(tmp_path):
    from mobilenet_sep.speed.measure import measure_model
    from mobilenet_sep.train.steps import train_step_function

    fused = fuse(_model())
    fused.save(tmp_path / "fused.keras")
    loaded = mobilenet_sep.load_model(str(tmp_path / "fused.keras"))
    images, labels = _images((32, 32, 3)), np.zeros((4, 10), "float32")
    attempts = {
        "fit": lambda: loaded.fit(images, labels, epochs=1, verbose=0),
        "train_on_batch": lambda: fused.train_on_batch(images, labels),
        "engine step": lambda: train_step_function(fused, None, None, None, 4),
        "tf-train runtime": lambda: measure_model(fused, ("tf-train",), warmup=1, repeats=1),
    }
    loaded.compile(optimizer="sgd", loss="mse")
    fused.compile(optimizer="sgd", loss="mse")
    for attempt, train in attempts.items():
        with pytest.raises(ValueError, match="is inference-only") as error:
            train()
        assert "\n" not in str(error.value) and str(error.value).endswith("_fused'"), attempt


def test_exports_of_the_fused_model_have_the_same_op_lists():
    model = _model()
    fused = fuse(model)
    ops, fused_ops = (tflite_ops(convert_to_tflite(subject)) for subject in (model, fused))
    assert [op.label for op in fused_ops] == [op.label for op in ops]
    assert check_tflite_graph(fused_ops, fused, "none") == []
    counts = onnx_op_counts(convert_to_onnx(model))  # converted fused: tf2onnx alone leaves Mul, Add and Pad
    assert counts["Conv"] == 28 and not {"Mul", "Add", "Pad", "BatchNormalization"} & set(counts)


def test_cli_exports_a_verified_fused_keras_file_and_evaluates_fused(tmp_path, capsys):
    source = tmp_path / "small.keras"
    _model().save(source)
    out = tmp_path / "small_fused.keras"
    assert main(["export", str(source), "--format", "keras", "--fuse", "--out", str(out), "--json"]) == 0
    metadata = json.loads(capsys.readouterr().out)
    assert metadata["fused"] and metadata["verification"]["passed"] and metadata["format"] == "keras"
    assert metadata["verification"]["relative_error"] <= TOLERANCE and len(metadata["fusion"]["folded"]) == 27
    assert "BatchNormalization" not in metadata["graph"]["ops"] and metadata["graph"]["ops"]["DepthwiseConv"] == 13
    assert json.loads((tmp_path / "small_fused.keras.json").read_text())["sha256"] == metadata["sha256"]
    assert isinstance(mobilenet_sep.load_model(str(out)), InferenceModel)

    figures = {}
    for flags in ([], ["--fuse"]):
        assert main(["evaluate", str(source), "digits", *flags, "--json"]) == 0
        figures[bool(flags)] = json.loads(capsys.readouterr().out)
    assert figures[True]["fused"] and not figures[False]["fused"]
    assert figures[True]["top1"] == figures[False]["top1"]
    assert figures[True]["loss"] == pytest.approx(figures[False]["loss"], rel=1e-4)


def test_cli_refuses_fuse_outside_the_keras_format_in_one_line(tmp_path, capsys):
    out = tmp_path / "small.onnx"
    assert main(["export", "mobilenet_v1_0.25_128", "--format", "onnx", "--fuse", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "fuse applies to the keras format" in error and error.count("\n") == 1 and not out.exists()


def test_keras_export_without_fuse_keeps_the_model_as_it_is(tmp_path):
    from mobilenet_sep.export.exporter import export_model

    model = _model()
    result = export_model(model, tmp_path / "same.keras", "keras", source="mobilenet_v1_0.25_128")
    assert result.verification.passed and result.verification.relative_error == 0.0
    assert not result.metadata["fused"] and result.metadata["fusion"] is None
    assert result.metadata["graph"]["ops"]["BatchNormalization"] == 27
    with pytest.raises(ValueError, match="Keras export takes no quantization"):
        export_model(model, tmp_path / "int8.keras", "keras", quantization="int8")
    with pytest.raises(ValueError, match="ends in .keras. Received: out="):
        export_model(model, tmp_path / "model.h5", "keras", fuse=True)
