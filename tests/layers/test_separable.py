"""The layers against explicit-loop NumPy references, Keras' own layers, finite differences and .keras files."""

import itertools
import os
import subprocess
import sys
import textwrap
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as reference
from helpers import numeric_gradient, randomize_batchnorm, relative_error, run_layer_test
from mobilenet_sep.layers import DepthwiseConv, DepthwiseSeparableConv, PointwiseConv

GRID = [
    (strides, padding, dilation, multiplier)
    for strides, padding, dilation, multiplier in itertools.product((1, 2), ("same", "valid"), (1, 2, 3), (1, 2, 3))
    if strides == 1 or dilation == 1  # stride and dilation cannot combine
]


def _random_input(rng, batch=2):
    height, width = rng.integers(7, 14, size=2)  # non-square in general
    return rng.normal(size=(batch, height, width, int(rng.integers(1, 5)))).astype("float32")


@pytest.mark.parametrize("strides,padding,dilation,multiplier", GRID)
def test_depthwise_matches_numpy_loops(strides, padding, dilation, multiplier):
    rng = np.random.default_rng(zlib.crc32(repr((strides, padding, dilation, multiplier)).encode()))  # reproducible
    x = _random_input(rng)
    kernel_size = tuple(int(k) for k in rng.integers(1, 4, size=2))  # non-square kernels too
    layer = DepthwiseConv(
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=multiplier,
        use_bias=True,
        bias_initializer="random_normal",
    )
    output = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = layer.get_weights()
    expected = reference.depthwise_conv(x, kernel, (strides,) * 2, padding, (dilation,) * 2) + bias
    assert output.shape == expected.shape == layer.compute_output_shape(x.shape)
    assert relative_error(output, expected) <= 1e-5


@pytest.mark.parametrize("filters", [1, 5, 16])
def test_pointwise_matches_numpy_loops(filters, rng):
    x = _random_input(rng)
    layer = PointwiseConv(filters, bias_initializer="random_normal")
    output = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (1, 1, x.shape[-1], filters)
    expected = reference.pointwise_conv(x, kernel) + bias
    assert output.shape == layer.compute_output_shape(x.shape)
    assert relative_error(output, expected) <= 1e-5


@pytest.mark.parametrize(
    "strides,padding,dilation,multiplier", [(1, "same", 1, 1), (2, "valid", 1, 2), (1, "same", 2, 3)]
)
def test_separable_block_matches_numpy_loops(strides, padding, dilation, multiplier, rng):
    x = _random_input(rng)
    block = DepthwiseSeparableConv(
        6, strides=strides, padding=padding, dilation_rate=dilation, depth_multiplier=multiplier
    )
    block.build(x.shape)
    randomize_batchnorm(block)
    output = keras.ops.convert_to_numpy(block(x, training=False))
    y = reference.depthwise_conv(x, block.depthwise.get_weights()[0], (strides,) * 2, padding, (dilation,) * 2)
    y = reference.relu6(reference.batchnorm_inference(y, *block.depthwise_bn.get_weights()))
    y = reference.pointwise_conv(y, block.pointwise.get_weights()[0])
    y = reference.relu6(reference.batchnorm_inference(y, *block.pointwise_bn.get_weights()))
    assert output.shape == block.compute_output_shape(x.shape)
    assert relative_error(output, y) <= 1e-5


@pytest.mark.parametrize(
    "strides,padding,dilation,multiplier",
    [(1, "same", 1, 1), (2, "same", 1, 2), (2, "valid", 1, 3), (1, "valid", 3, 2)],
)
def test_equal_to_keras_layers_with_same_weights(strides, padding, dilation, multiplier, rng):
    x = _random_input(rng)
    ours = DepthwiseConv(3, strides=strides, padding=padding, dilation_rate=dilation, depth_multiplier=multiplier)
    theirs = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding=padding, dilation_rate=dilation, depth_multiplier=multiplier
    )
    theirs.build(x.shape)
    ours.build(x.shape)
    ours.set_weights([rng.normal(size=w.shape) for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-6, atol=1e-6)

    pointwise, conv1x1 = PointwiseConv(7), keras.layers.Conv2D(7, 1)
    pointwise.build(x.shape)
    conv1x1.build(x.shape)
    conv1x1.set_weights(pointwise.get_weights())
    np.testing.assert_allclose(pointwise(x), conv1x1(x), rtol=1e-6, atol=1e-6)

    separable = keras.layers.SeparableConv2D(
        7, 3, strides=strides, padding=padding, dilation_rate=dilation, depth_multiplier=multiplier, use_bias=False
    )
    separable.build(x.shape)
    depthwise_kernel, pointwise_kernel = separable.get_weights()
    ours.set_weights([depthwise_kernel, np.zeros(ours.bias.shape)])
    pointwise_no_bias = PointwiseConv(7, use_bias=False)
    pointwise_no_bias.build(ours.compute_output_shape(x.shape))
    pointwise_no_bias.set_weights([pointwise_kernel])
    np.testing.assert_allclose(pointwise_no_bias(ours(x)), separable(x), rtol=1e-5, atol=1e-5)


def test_block_equals_keras_layer_stack_in_training_and_inference(rng):
    x = _random_input(rng, batch=4)
    block = DepthwiseSeparableConv(8, strides=2, depth_multiplier=2, batchnorm_momentum=0.9)
    stack = keras.Sequential(
        [
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(6.0),
            keras.layers.Conv2D(8, 1, use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(6.0),
        ]
    )
    block.build(x.shape)
    stack.build(x.shape)
    randomize_batchnorm(block)
    stack.set_weights(block.get_weights())
    for training in (False, True):
        np.testing.assert_allclose(block(x, training=training), stack(x, training=training), rtol=1e-5, atol=1e-5)
    # Training updated the moving statistics of both the same way.
    np.testing.assert_allclose(
        np.concatenate([w.ravel() for w in block.get_weights()]),
        np.concatenate([w.ravel() for w in stack.get_weights()]),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: DepthwiseConv((3, 2), strides=2, padding="same", depth_multiplier=2, dtype="float64"),
        lambda: DepthwiseConv(3, padding="valid", dilation_rate=2, dtype="float64"),
        lambda: PointwiseConv(3, dtype="float64"),
        lambda: DepthwiseSeparableConv(3, strides=2, dtype="float64"),
    ],
    ids=["depthwise_strided", "depthwise_dilated", "pointwise", "separable_block"],
)
def test_gradients_equal_finite_differences(make_layer, rng):
    layer = make_layer()
    x = rng.normal(size=(2, 6, 5, 2))
    layer.build(x.shape)
    randomize_batchnorm(layer)
    weights = [w for w in layer.trainable_weights]
    values = [w.numpy().copy() for w in weights]
    probe = rng.normal(size=layer.compute_output_shape(x.shape))

    def loss():
        for weight, value in zip(weights, values, strict=True):
            weight.assign(value)
        return float(np.sum(keras.ops.convert_to_numpy(layer(x, training=False)) * probe))

    x_tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        objective = tf.reduce_sum(layer(x_tensor, training=False) * probe)
    analytic = tape.gradient(objective, [x_tensor] + weights)
    numeric = [numeric_gradient(loss, x)] + [numeric_gradient(loss, value) for value in values]
    for got, want in zip(analytic, numeric, strict=True):
        assert relative_error(got.numpy(), want) <= 1e-6


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: DepthwiseConv(
            (3, 5),
            strides=(2, 1),
            padding="valid",
            depth_multiplier=2,
            kernel_regularizer="l2",
            kernel_constraint="max_norm",
            bias_initializer="random_normal",
        ),
        lambda: PointwiseConv(12, kernel_initializer="he_normal", bias_regularizer="l1"),
        lambda: DepthwiseSeparableConv(
            16, kernel_size=5, dilation_rate=2, depth_multiplier=3, batchnorm_momentum=0.9, pointwise_regularizer="l2"
        ),
    ],
)
def test_layers_round_trip_through_config_and_keras_files(make_layer, tmp_path, rng):
    layer = make_layer()
    inputs = rng.normal(size=(2, 15, 11, 3)).astype("float32")
    outputs = run_layer_test(layer, inputs, tmp_path)
    assert np.std(outputs) > 0  # a layer whose outputs vary: equality means something


@pytest.mark.parametrize(
    "make_layer,message",
    [
        (lambda: PointwiseConv(0), "filters=0"),
        (lambda: PointwiseConv(-3), "filters=-3"),
        (lambda: DepthwiseConv(0), "kernel_size=0"),
        (lambda: DepthwiseConv((3, -1)), "kernel_size=(3, -1)"),
        (lambda: DepthwiseConv(3, strides=2, dilation_rate=2), "strides=2, dilation_rate=2"),
        (lambda: DepthwiseConv(3, padding="full"), "padding='full'"),
        (lambda: DepthwiseConv(3, depth_multiplier=0), "depth_multiplier=0"),
        (lambda: DepthwiseSeparableConv(0), "filters=0"),
        (lambda: DepthwiseSeparableConv(8, strides=2, dilation_rate=3), "dilation_rate=3"),
    ],
)
def test_bad_arguments_name_the_value(make_layer, message):
    with pytest.raises(ValueError, match="Received: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        make_layer()


@pytest.mark.parametrize("layer", [DepthwiseConv(3), PointwiseConv(4), DepthwiseSeparableConv(4)])
def test_input_spec_refuses_wrong_rank_and_channels(layer):
    """The layers state their inputs with keras.InputSpec: Keras names the layer and the shape received."""
    with pytest.raises(ValueError, match=r"expected ndim=4, found ndim=3. Full shape received: \(2, 8, 3\)"):
        layer(np.zeros((2, 8, 3), "float32"))
    layer(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 3"):
        layer(np.zeros((1, 8, 8, 4), "float32"))


def test_layers_run_under_jax_backend(tmp_path):
    """The same layers on Keras' JAX backend give the NumPy reference's numbers."""
    pytest.importorskip("jax")
    script = textwrap.dedent(
        """
        import sys, numpy as np, keras
        assert keras.backend.backend() == "jax"
        from mobilenet_sep.layers import DepthwiseConv, PointwiseConv, DepthwiseSeparableConv
        x = np.random.default_rng(0).normal(size=(2, 9, 7, 3)).astype("float32")
        depthwise = DepthwiseConv(3, strides=2, depth_multiplier=2)
        pointwise = PointwiseConv(5)
        y = pointwise(depthwise(x))
        block = DepthwiseSeparableConv(4, dilation_rate=2)
        z = block(x, training=True)
        np.savez(sys.argv[1], x=x, y=np.asarray(y), dk=depthwise.get_weights()[0], db=depthwise.get_weights()[1],
                 pk=pointwise.get_weights()[0], pb=pointwise.get_weights()[1], z_shape=np.asarray(z.shape))
        """
    )
    out = tmp_path / "jax.npz"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, capture_output=True)
    data = np.load(out)
    expected = reference.depthwise_conv(data["x"], data["dk"], (2, 2), "same") + data["db"]
    expected = reference.pointwise_conv(expected, data["pk"]) + data["pb"]
    assert relative_error(data["y"], expected) <= 1e-5
    assert tuple(data["z_shape"]) == (2, 9, 7, 4)
