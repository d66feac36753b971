"""Depthwise, pointwise and depthwise-separable convolution as Keras 3 layers.

The layers use `keras.ops` only, so they run on every Keras backend, and they
keep the weight layout of `keras.layers.DepthwiseConv2D` (kernel
`(kh, kw, channels, depth_multiplier)`) and of a 1x1 `keras.layers.Conv2D`
(kernel `(1, 1, in, out)`): weights move between ours and Keras' unchanged.
All layers take channels-last input `(batch, height, width, channels)`.
"""

import math

import keras
from keras import ops

from mobilenet_sep.utils import checks

PACKAGE = "mobilenet_sep"


def conv_output_length(length: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    """Output size of a convolution along one axis (None stays None)."""
    if length is None:
        return None
    if padding == "same":
        return math.ceil(length / stride)
    return (length - dilation * (kernel - 1) - 1) // stride + 1


class KernelLayer(keras.layers.Layer):
    """A layer with a kernel and an optional bias: Keras' weight arguments, their weights and their config."""

    def __init__(
        self,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def _add_kernel_and_bias(self, kernel_shape, bias_size):
        self.kernel = self.add_weight(
            name="kernel",
            shape=kernel_shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(bias_size,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def _add_bias(self, outputs):
        return outputs if self.bias is None else ops.add(outputs, self.bias)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            }
        )
        return config


class _Conv2DBase(KernelLayer):
    """Our 2-D convolutions take channels-last input of rank 4 with a known channel count.

    The input spec says so, and once built it pins the channel count: Keras raises the shape error
    itself, naming the layer.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = keras.InputSpec(ndim=4)

    def _channels(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' needs a known channel count. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return channels

    def _pin_channels(self, channels):
        self.input_spec = keras.InputSpec(ndim=4, axes={-1: channels})


@keras.saving.register_keras_serializable(package=PACKAGE)
class DepthwiseConv(_Conv2DBase):
    """Per-channel k x k convolution: each input channel gets `depth_multiplier` filters.

    Output channels are `channels * depth_multiplier`; the cost is
    `kh * kw * channels * depth_multiplier * out_h * out_w` multiplications.

    Args:
        kernel_size: int or (kh, kw).
        strides: int or (sh, sw).
        padding: "same" or "valid".
        dilation_rate: int or pair; a-trous spacing of the kernel taps. Cannot be
            combined with strides > 1.
        depth_multiplier: filters per input channel.
        use_bias, kernel_*/bias_* initializer, regularizer, constraint: as in Keras.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int] = 3,
        strides: int | tuple[int, int] = 1,
        padding: str = "same",
        dilation_rate: int | tuple[int, int] = 1,
        depth_multiplier: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = checks.int_pair(kernel_size, "kernel_size")
        self.strides = checks.int_pair(strides, "strides")
        self.dilation_rate = checks.int_pair(dilation_rate, "dilation_rate")
        self.padding = checks.choice(str(padding).lower(), ("same", "valid"), "padding")
        self.depth_multiplier = checks.positive_int(depth_multiplier, "depth_multiplier")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides` > 1 cannot be combined with `dilation_rate` > 1. "
                f"Received: strides={strides}, dilation_rate={dilation_rate}"
            )

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self._add_kernel_and_bias(
            self.kernel_size + (channels, self.depth_multiplier),
            channels * self.depth_multiplier,
        )
        self._pin_channels(channels)

    def call(self, inputs):
        outputs = ops.depthwise_conv(
            inputs,
            self.kernel,
            strides=self.strides,
            padding=self.padding,
            data_format="channels_last",
            dilation_rate=self.dilation_rate,
        )
        return self._add_bias(outputs)

    def compute_output_shape(self, input_shape):
        channels = self._channels(input_shape)
        batch, height, width = input_shape[:3]
        spatial = [
            conv_output_length(size, kernel, stride, dilation, self.padding)
            for size, kernel, stride, dilation in zip(
                (height, width), self.kernel_size, self.strides, self.dilation_rate, strict=True
            )
        ]
        return (batch, *spatial, channels * self.depth_multiplier)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "dilation_rate": self.dilation_rate,
                "depth_multiplier": self.depth_multiplier,
            }
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class PointwiseConv(_Conv2DBase):
    """1x1 convolution mixing M input channels into `filters` output channels.

    The cost is `M * filters * height * width` multiplications. The kernel is
    stored as `(1, 1, M, filters)`, the layout of a 1x1 `keras.layers.Conv2D`.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = checks.positive_int(filters, "filters")

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self._add_kernel_and_bias((1, 1, channels, self.filters), self.filters)
        self._pin_channels(channels)

    def call(self, inputs):
        # A 1x1 conv (not a matmul) so that converters emit CONV_2D, as for Keras' Conv2D.
        outputs = ops.conv(inputs, self.kernel, strides=1, padding="valid", data_format="channels_last")
        return self._add_bias(outputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.filters)

    def get_config(self):
        config = super().get_config()
        config["filters"] = self.filters
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class DepthwiseSeparableConv(keras.layers.Layer):
    """The MobileNet block: depthwise -> BatchNorm -> ReLU6 -> pointwise -> BatchNorm -> ReLU6.

    Neither convolution has a bias: each BatchNorm's offset takes its place. The
    sub-layers share the block's dtype policy (float64, mixed precision, ...).

    Args:
        filters: output channels of the pointwise convolution.
        kernel_size, strides, padding, dilation_rate, depth_multiplier: of the
            depthwise convolution (see `DepthwiseConv`).
        batchnorm_momentum, batchnorm_epsilon: of both BatchNorm layers.
        depthwise_*/pointwise_* initializer, regularizer, constraint: of the kernels.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        strides: int | tuple[int, int] = 1,
        padding: str = "same",
        dilation_rate: int | tuple[int, int] = 1,
        depth_multiplier: int = 1,
        batchnorm_momentum: float = 0.99,
        batchnorm_epsilon: float = 1e-3,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.batchnorm_momentum = checks.number(batchnorm_momentum, "batchnorm_momentum", low=0, high=1)
        self.batchnorm_epsilon = checks.number(batchnorm_epsilon, "batchnorm_epsilon", low=0, low_open=True)
        self.depthwise = DepthwiseConv(
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            dilation_rate=dilation_rate,
            depth_multiplier=depth_multiplier,
            use_bias=False,
            kernel_initializer=depthwise_initializer,
            kernel_regularizer=depthwise_regularizer,
            kernel_constraint=depthwise_constraint,
            name="depthwise",
            dtype=self.dtype_policy,
        )
        self.depthwise_bn = keras.layers.BatchNormalization(
            momentum=self.batchnorm_momentum,
            epsilon=self.batchnorm_epsilon,
            name="depthwise_bn",
            dtype=self.dtype_policy,
        )
        self.pointwise = PointwiseConv(
            filters,
            use_bias=False,
            kernel_initializer=pointwise_initializer,
            kernel_regularizer=pointwise_regularizer,
            kernel_constraint=pointwise_constraint,
            name="pointwise",
            dtype=self.dtype_policy,
        )
        self.pointwise_bn = keras.layers.BatchNormalization(
            momentum=self.batchnorm_momentum,
            epsilon=self.batchnorm_epsilon,
            name="pointwise_bn",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        depthwise_shape = self.depthwise.compute_output_shape(input_shape)
        self.depthwise_bn.build(depthwise_shape)
        self.pointwise.build(depthwise_shape)
        self.pointwise_bn.build(self.pointwise.compute_output_shape(depthwise_shape))

    def call(self, inputs, training=None):
        x = self.depthwise(inputs)
        x = ops.relu6(self.depthwise_bn(x, training=training))
        x = self.pointwise(x)
        return ops.relu6(self.pointwise_bn(x, training=training))

    def compute_output_shape(self, input_shape):
        return self.pointwise.compute_output_shape(self.depthwise.compute_output_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        depthwise, pointwise = self.depthwise, self.pointwise
        config.update(
            {
                "filters": pointwise.filters,
                "kernel_size": depthwise.kernel_size,
                "strides": depthwise.strides,
                "padding": depthwise.padding,
                "dilation_rate": depthwise.dilation_rate,
                "depth_multiplier": depthwise.depth_multiplier,
                "batchnorm_momentum": self.batchnorm_momentum,
                "batchnorm_epsilon": self.batchnorm_epsilon,
            }
        )
        for prefix, layer in (("depthwise", depthwise), ("pointwise", pointwise)):
            config[f"{prefix}_initializer"] = keras.initializers.serialize(layer.kernel_initializer)
            config[f"{prefix}_regularizer"] = keras.regularizers.serialize(layer.kernel_regularizer)
            config[f"{prefix}_constraint"] = keras.constraints.serialize(layer.kernel_constraint)
        return config
