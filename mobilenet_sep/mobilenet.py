"""MobileNetV1 (Howard et al. 2017, arXiv:1704.04861) and its standard-convolution twin.

The network is Table 1 of the paper: a full 3x3 convolution, then 13
depthwise-separable blocks, global average pooling and a 1x1 classifier. The
paper's table gives the last depthwise layer stride 2 while its output stays
7x7; like every released implementation we use stride 1 there.

Layer names and stride-2 padding are those of `keras.applications.MobileNet`
(`conv1`, `conv_pad_N`, `conv_dw_N`, `conv_pw_N`, `*_bn`, `*_relu`,
`conv_preds`), so its ImageNet weight files load by layer name.
"""

import keras

from mobilenet_sep import weights as weight_files
from mobilenet_sep.layers import DepthwiseConv, PointwiseConv

STEM = (32, 2)
"""Table 1, row 1: a full 3x3 convolution with (filters, stride)."""

SEPARABLE_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),  # Table 1 prints stride 2 here: a typo, the output stays 7x7.
)
"""Table 1, the 13 depthwise-separable blocks as (pointwise filters, depthwise stride)."""

OUTPUT_STRIDES = (None, 8, 16, 32)


def _check_arguments(alpha, depth_multiplier, input_shape, pooling, classes, dropout, min_depth, output_stride):
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise ValueError(f"`alpha` must be a number > 0. Received: alpha={alpha!r}")
    if not isinstance(depth_multiplier, int) or isinstance(depth_multiplier, bool) or depth_multiplier < 1:
        raise ValueError(f"`depth_multiplier` must be an int >= 1. Received: depth_multiplier={depth_multiplier!r}")
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[2] is None or shape[2] < 1:
            raise ValueError(f"`input_shape` must be (height, width, channels). Received: input_shape={input_shape!r}")
        if any(size is not None and size < 32 for size in shape[:2]):
            raise ValueError(f"`input_shape` height and width must be >= 32. Received: input_shape={input_shape!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f'`pooling` must be None, "avg" or "max". Received: pooling={pooling!r}')
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be a positive int. Received: classes={classes!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    if not isinstance(min_depth, int) or min_depth < 1:
        raise ValueError(f"`min_depth` must be a positive int. Received: min_depth={min_depth!r}")
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"`output_stride` must be one of None, 8, 16, 32. Received: output_stride={output_stride!r}")


def _strides_and_rates(output_stride):
    """(stride, dilation) of the stem and each block, TF-slim's a-trous rule.

    Once the running stride reaches `output_stride`, later layers keep stride 1
    and dilate their kernels instead, so the receptive field grows as before.
    """
    plan, current_stride, rate = [], 1, 1
    for stride in (STEM[1], *(stride for _, stride in SEPARABLE_BLOCKS)):
        if output_stride is not None and current_stride == output_stride:
            plan.append((1, rate))
            rate *= stride
        else:
            plan.append((stride, 1))
            current_stride *= stride
    return plan


def _conv_bn_relu6(x, filters, stride, dilation, name, batchnorm_momentum):
    """A full 3x3 convolution block; stride 2 pads bottom/right as Keras' MobileNet does."""
    padding = "same"
    if stride > 1 and name != "conv1":
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=name.replace("conv", "conv_pad"))(x)
        padding = "valid"
    x = keras.layers.Conv2D(
        filters, 3, strides=stride, padding=padding, dilation_rate=dilation, use_bias=False, name=name
    )(x)
    x = keras.layers.BatchNormalization(momentum=batchnorm_momentum, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _separable_block(x, filters, stride, dilation, depth_multiplier, block_id, batchnorm_momentum):
    """Depthwise 3x3 -> BN -> ReLU6 -> pointwise 1x1 -> BN -> ReLU6, as separate named layers."""
    padding = "same"
    if stride > 1:
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
        padding = "valid"
    x = DepthwiseConv(
        3,
        strides=stride,
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=f"conv_dw_{block_id}",
    )(x)
    x = keras.layers.BatchNormalization(momentum=batchnorm_momentum, name=f"conv_dw_{block_id}_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = PointwiseConv(filters, use_bias=False, name=f"conv_pw_{block_id}")(x)
    x = keras.layers.BatchNormalization(momentum=batchnorm_momentum, name=f"conv_pw_{block_id}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def default_name(alpha, input_shape, separable=True):
    """`mobilenet_v1_1.0_224`, `conv_mobilenet_v1_0.5_160x128`, `mobilenet_v1_1.0` (any size)."""
    name = f"{'' if separable else 'conv_'}mobilenet_v1_{float(alpha):g}"
    name = name + ".0" if float(alpha).is_integer() else name
    if input_shape is None or None in tuple(input_shape)[:2]:
        return name
    height, width = tuple(input_shape)[:2]
    return f"{name}_{height}" if height == width else f"{name}_{height}x{width}"


def MobileNetV1(
    alpha=1.0,
    depth_multiplier=1,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    classes=1000,
    dropout=1e-3,
    classifier_activation="softmax",
    min_depth=8,
    output_stride=None,
    separable=True,
    weights=None,
    batchnorm_momentum=0.99,
    name=None,
):
    """Build MobileNetV1 as a functional `keras.Model`.

    Args:
        alpha: width multiplier; layer widths are `max(min_depth, int(c * alpha))`.
        depth_multiplier: filters per channel in every depthwise convolution.
        input_shape: (height, width, channels), height and width >= 32 (the
            resolution multiplier of the paper), or None for (None, None, 3):
            any size at run time.
        include_top: end with global pooling, dropout and a 1x1 classifier.
        pooling: without the top, None (feature map), "avg" or "max".
        classes: outputs of the classifier.
        dropout: rate before the classifier.
        classifier_activation: "softmax", None (logits) or any Keras activation.
        min_depth: the narrowest a layer may become under `alpha`.
        output_stride: None (32), 16 or 8: past that stride, layers keep
            stride 1 and use dilated kernels (TF-slim's a-trous rule).
        separable: True for the paper's network; False for its "Conv MobileNet"
            twin (paper Table 4), each separable block replaced by one full
            3x3 convolution with the same output channels.
        weights: None, "imagenet", or the path of a keras.applications
            MobileNet `.h5` weight file.
        batchnorm_momentum: of every BatchNorm layer (Keras' 0.99 is too slow for
            short training runs).
        name: the model's name; by default as in the zoo, `mobilenet_v1_1.0_224`.
    """
    _check_arguments(alpha, depth_multiplier, input_shape, pooling, classes, dropout, min_depth, output_stride)
    if input_shape is None:
        input_shape = (None, None, 3)
    if weights is not None:
        weight_file = weight_files.resolve(
            weights,
            alpha=alpha,
            input_shape=input_shape,
            include_top=include_top,
            classes=classes,
            depth_multiplier=depth_multiplier,
            separable=separable,
        )

    def width(channels):
        return max(min_depth, int(channels * alpha))

    plan = _strides_and_rates(output_stride)
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    stem_stride, stem_rate = plan[0]
    x = _conv_bn_relu6(inputs, width(STEM[0]), stem_stride, stem_rate, "conv1", batchnorm_momentum)
    for block_id, ((filters, _), (stride, rate)) in enumerate(zip(SEPARABLE_BLOCKS, plan[1:], strict=True), start=1):
        if separable:
            x = _separable_block(x, width(filters), stride, rate, depth_multiplier, block_id, batchnorm_momentum)
        else:
            x = _conv_bn_relu6(x, width(filters), stride, rate, f"conv_{block_id}", batchnorm_momentum)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="global_average_pooling2d")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Conv2D(classes, 1, padding="same", name="conv_preds")(x)
        x = keras.layers.Reshape((classes,), name="reshape_2")(x)
        x = keras.layers.Activation(classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="global_max_pooling2d")(x)

    model = keras.Model(inputs, x, name=name or default_name(alpha, input_shape, separable))
    if weights is not None:
        weight_files.load_legacy_h5(model, weight_file)
    return model
