"""MobileNetV1: Table 1, the multipliers, output stride, the twin, and parity with keras.applications."""

import keras
import numpy as np
import pytest

from helpers import randomize_batchnorm
from mobilenet_sep import MobileNetV1
from mobilenet_sep.layers import DepthwiseConv, PointwiseConv

ALPHAS = (0.25, 0.5, 0.75, 1.0)
SIZES = (128, 160, 192, 224)


def test_default_model_has_the_published_parameter_count():
    model = MobileNetV1()
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert model.count_params() == 4_253_864
    assert trainable == 4_231_976
    assert model.name == "mobilenet_v1_1.0_224"


@pytest.mark.parametrize("alpha", ALPHAS)
def test_parameter_counts_equal_keras_applications(alpha):
    for size in SIZES:
        ours = MobileNetV1(alpha=alpha, input_shape=(size, size, 3))
        theirs = keras.applications.MobileNet(weights=None, alpha=alpha, input_shape=(size, size, 3))
        assert ours.count_params() == theirs.count_params()


def test_table_1_output_shapes():
    """Paper Table 1: the feature map after each block at 224x224, with the last stride fixed to 1."""
    model = MobileNetV1(include_top=False)
    expected = [
        ("conv1", 112, 32),
        ("conv_pw_1", 112, 64),
        ("conv_pw_2", 56, 128),
        ("conv_pw_3", 56, 128),
        ("conv_pw_4", 28, 256),
        ("conv_pw_5", 28, 256),
        ("conv_pw_6", 14, 512),
        *[(f"conv_pw_{i}", 14, 512) for i in range(7, 12)],
        ("conv_pw_12", 7, 1024),
        ("conv_pw_13", 7, 1024),
    ]
    for name, size, channels in expected:
        assert model.get_layer(name).output.shape == (None, size, size, channels)
    kinds = [type(layer) for layer in model.layers]
    assert kinds.count(DepthwiseConv) == 13 and kinds.count(PointwiseConv) == 13


def test_layer_names_and_weights_match_keras_applications():
    for include_top in (True, False):
        ours = MobileNetV1(alpha=0.5, input_shape=(128, 128, 3), include_top=include_top)
        theirs = keras.applications.MobileNet(
            weights=None, alpha=0.5, input_shape=(128, 128, 3), include_top=include_top
        )
        ours_weighted = {layer.name: [w.shape for w in layer.weights] for layer in ours.layers if layer.weights}
        theirs_weighted = {layer.name: [w.shape for w in layer.weights] for layer in theirs.layers if layer.weights}
        assert ours_weighted == theirs_weighted
        padding = {layer.name for layer in theirs.layers if isinstance(layer, keras.layers.ZeroPadding2D)}
        assert padding == {layer.name for layer in ours.layers if isinstance(layer, keras.layers.ZeroPadding2D)}


def test_width_multiplier_and_min_depth():
    model = MobileNetV1(alpha=0.1, include_top=False, input_shape=(64, 64, 3), min_depth=8)
    assert model.get_layer("conv1").filters == 8  # max(8, int(32 * 0.1))
    assert model.get_layer("conv_pw_13").filters == 102  # int(1024 * 0.1)
    wide = MobileNetV1(alpha=1.3, include_top=False, input_shape=(64, 64, 3), min_depth=1)
    assert wide.get_layer("conv1").filters == 41 and wide.get_layer("conv_pw_1").filters == 83


def test_depth_multiplier_widens_the_depthwise_layers():
    model = MobileNetV1(alpha=0.25, depth_multiplier=2, include_top=False, input_shape=(64, 64, 3))
    assert model.get_layer("conv_dw_1").output.shape[-1] == 16
    assert model.get_layer("conv_pw_1").output.shape[-1] == 16


@pytest.mark.parametrize("output_stride,expected_size", [(None, 7), (32, 7), (16, 14), (8, 28)])
def test_output_stride_uses_dilated_depthwise_kernels(output_stride, expected_size):
    model = MobileNetV1(alpha=0.25, include_top=False, output_stride=output_stride)
    assert model.output.shape[1:3] == (expected_size, expected_size)
    rates = [model.get_layer(f"conv_dw_{i}").dilation_rate[0] for i in range(1, 14)]
    # TF-slim's rule: the layer whose stride is dropped keeps the current rate, later ones multiply it.
    expected_rates = {None: [1] * 13, 32: [1] * 13, 16: [1] * 11 + [1, 2], 8: [1] * 5 + [1] + [2] * 6 + [4]}
    assert rates == expected_rates[output_stride]
    strides = [model.get_layer(f"conv_dw_{i}").strides[0] for i in range(1, 14)]
    assert all(stride == 1 for stride, rate in zip(strides, rates, strict=True) if rate > 1)


def test_resolution_multiplier_any_size_and_variable_size(rng):
    model = MobileNetV1(alpha=0.25, input_shape=(97, 65, 3), classes=5)
    assert model.name == "mobilenet_v1_0.25_97x65"
    assert model.predict(rng.normal(size=(2, 97, 65, 3)), verbose=0).shape == (2, 5)
    variable = MobileNetV1(alpha=0.25, input_shape=None, classes=3, classifier_activation=None)
    assert variable.input_shape == (None, None, None, 3)
    for height, width in ((32, 32), (64, 48)):
        assert variable.predict(rng.normal(size=(1, height, width, 3)), verbose=0).shape == (1, 3)


def test_pooling_options():
    for pooling in ("avg", "max"):
        model = MobileNetV1(alpha=0.25, include_top=False, pooling=pooling, input_shape=(64, 64, 3))
        assert model.output.shape == (None, 256)
    assert MobileNetV1(alpha=0.25, include_top=False, input_shape=(64, 64, 3)).output.shape == (None, 2, 2, 256)


def test_standard_conv_twin():
    twin = MobileNetV1(separable=False)
    assert twin.name == "conv_mobilenet_v1_1.0_224"
    assert round(twin.count_params() / 1e6, 1) == 29.3  # paper Table 4
    assert not any(isinstance(layer, (DepthwiseConv, PointwiseConv)) for layer in twin.layers)
    separable = MobileNetV1()
    for block_id in range(1, 14):
        conv = twin.get_layer(f"conv_{block_id}")
        assert conv.kernel_size == (3, 3)
        assert conv.output.shape == separable.get_layer(f"conv_pw_{block_id}").output.shape


def test_batchnorm_momentum_reaches_every_batchnorm():
    model = MobileNetV1(alpha=0.25, input_shape=(32, 32, 3), batchnorm_momentum=0.9)
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}


def test_logits_equal_keras_applications_with_shared_weights(rng):
    """Same weights, same non-trivial statistics, same logits: the topology is keras.applications'."""
    theirs = keras.applications.MobileNet(
        weights=None, alpha=0.75, input_shape=(96, 96, 3), classes=7, classifier_activation=None
    )
    randomize_batchnorm(theirs)
    ours = MobileNetV1(alpha=0.75, input_shape=(96, 96, 3), classes=7, classifier_activation=None)
    ours.set_weights(theirs.get_weights())
    x = rng.uniform(-1, 1, size=(3, 96, 96, 3)).astype("float32")
    expected = theirs.predict(x, verbose=0)
    assert np.std(expected) > 0.1  # non-trivial logits
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"alpha": -1}, "alpha=-1"),
        ({"alpha": 0}, "alpha=0"),
        ({"depth_multiplier": 0}, "depth_multiplier=0"),
        ({"input_shape": (31, 64, 3)}, r"input_shape=\(31, 64, 3\)"),
        ({"input_shape": (64, 64)}, r"input_shape=\(64, 64\)"),
        ({"pooling": "sum"}, "pooling='sum'"),
        ({"classes": 0}, "classes=0"),
        ({"dropout": 1.5}, "dropout=1.5"),
        ({"min_depth": 0}, "min_depth=0"),
        ({"output_stride": 4}, "output_stride=4"),
        ({"weights": "/no/such/file.h5"}, "weights='/no/such/file.h5'"),
    ],
)
def test_bad_arguments_name_the_value(arguments, message):
    with pytest.raises(ValueError, match="Received: " + message):
        MobileNetV1(**arguments)
