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

from mobilenet_sep.layers import DepthwiseConv, PointwiseConv
from mobilenet_sep.utils import checks
from mobilenet_sep.zoo import imagenet_weights
from mobilenet_sep.zoo.registry import register_builder

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
MAX_ALPHA = 16.0
"""The widest width multiplier built: block 13 then has 16,384 channels, a 1 GiB pointwise kernel;
wider ones would not fit in memory (alpha=1e20 asks TensorFlow for impossible shapes)."""


def _check_arguments(alpha, depth_multiplier, input_shape, pooling, classes, dropout, min_depth, output_stride):
    checks.number(alpha, "alpha", low=0, high=MAX_ALPHA, low_open=True)
    checks.positive_int(depth_multiplier, "depth_multiplier")
    if input_shape is not None:
        try:
            shape = tuple(input_shape)
        except TypeError:
            shape = ()
        sizes_ok = all(size is None or checks.is_int(size) for size in shape[:2])
        if len(shape) != 3 or not checks.is_int(shape[2]) or shape[2] < 1 or not sizes_ok:
            checks.fail("input_shape", input_shape, "must be (height, width, channels)")
        if any(size is not None and size < 32 for size in shape[:2]):
            checks.fail("input_shape", input_shape, "height and width must be >= 32")
    checks.choice(pooling, (None, "avg", "max"), "pooling")
    checks.positive_int(classes, "classes")
    checks.number(dropout, "dropout", low=0, high=1, high_open=True)
    checks.positive_int(min_depth, "min_depth")
    checks.choice(output_stride, OUTPUT_STRIDES, "output_stride")


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


def _conv_bn_relu6(x, filters, stride, dilation, name, batchnorm):
    """A full 3x3 convolution block; stride 2 pads bottom/right as Keras' MobileNet does."""
    padding = "same"
    if stride > 1 and name != "conv1":
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=name.replace("conv", "conv_pad"))(x)
        padding = "valid"
    x = keras.layers.Conv2D(
        filters, 3, strides=stride, padding=padding, dilation_rate=dilation, use_bias=False, name=name
    )(x)
    x = keras.layers.BatchNormalization(**batchnorm, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _separable_block(x, filters, stride, dilation, depth_multiplier, block_id, batchnorm):
    """Depthwise 3x3 -> BN -> ReLU6 -> pointwise 1x1 -> BN -> ReLU6, as separate named layers;
    `batchnorm`: the BatchNormalization keyword arguments (momentum, synchronized)."""
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
    x = keras.layers.BatchNormalization(**batchnorm, name=f"conv_dw_{block_id}_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = PointwiseConv(filters, use_bias=False, name=f"conv_pw_{block_id}")(x)
    x = keras.layers.BatchNormalization(**batchnorm, name=f"conv_pw_{block_id}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def default_name(alpha, input_shape, separable=True):
    """`mobilenet_v1_1.0_224`, `conv_mobilenet_v1_0.5_160x128`, `mobilenet_v1_1.0` (any size)."""
    name = f"{'' if separable else 'conv_'}mobilenet_v1_{float(alpha):g}"
    name = name + ".0" if float(alpha).is_integer() else name
    if input_shape is None or None in tuple(input_shape)[:2]:
        return name
    height, width = tuple(input_shape)[:2]
    return f"{name}_{height}" if height == width else f"{name}_{height}x{width}"


@register_builder("mobilenet_v1")
def MobileNetV1(
    alpha: float = 1.0,
    depth_multiplier: int = 1,
    input_shape: tuple | None = (224, 224, 3),
    include_top: bool = True,
    pooling: str | None = None,
    classes: int = 1000,
    dropout: float = 1e-3,
    classifier_activation: str | None = "softmax",
    min_depth: int = 8,
    output_stride: int | None = None,
    separable: bool = True,
    weights: str | None = None,
    batchnorm_momentum: float = 0.99,
    synchronized_batchnorm: bool = False,
    name: str | None = None,
) -> keras.Model:
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
        synchronized_batchnorm: under a tf.distribute strategy, normalize each batch
            with the statistics of the global batch (all replicas) rather than of the
            replica's share: distributed training then equals one device's.
        name: the model's name; by default as in the zoo, `mobilenet_v1_1.0_224`.
    """
    _check_arguments(alpha, depth_multiplier, input_shape, pooling, classes, dropout, min_depth, output_stride)
    checks.number(batchnorm_momentum, "batchnorm_momentum", low=0, high=1)
    flags = ((include_top, "include_top"), (separable, "separable"), (synchronized_batchnorm, "synchronized_batchnorm"))
    for flag, argument in flags:
        if not isinstance(flag, bool):
            checks.fail(argument, flag, "must be True or False")
    if input_shape is None:
        input_shape = (None, None, 3)
    if weights is not None:
        weight_file = imagenet_weights.resolve(
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
    batchnorm = {"momentum": batchnorm_momentum, "synchronized": synchronized_batchnorm}
    x = _conv_bn_relu6(inputs, width(STEM[0]), stem_stride, stem_rate, "conv1", batchnorm)
    for block_id, ((filters, _), (stride, rate)) in enumerate(zip(SEPARABLE_BLOCKS, plan[1:], strict=True), start=1):
        if separable:
            x = _separable_block(x, width(filters), stride, rate, depth_multiplier, block_id, batchnorm)
        else:
            x = _conv_bn_relu6(x, width(filters), stride, rate, f"conv_{block_id}", batchnorm)

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
        imagenet_weights.load_legacy_h5(model, weight_file)
    return model


def load_base_weights(model: keras.Model, weights: str, arguments: dict) -> set[str]:
    """Fill the base of a MobileNetV1 built with `arguments` from pretrained weights, by layer name.

    `weights` is "imagenet" or a no-top legacy `.h5` file; the classifier stays as built.
    Returns the names of the layers filled (the ones fine-tuning may freeze).
    """
    path = imagenet_weights.resolve(
        weights,
        alpha=arguments["alpha"],
        input_shape=arguments["input_shape"] or (None, None, 3),
        include_top=False,
        classes=arguments["classes"],
        depth_multiplier=arguments["depth_multiplier"],
        separable=arguments["separable"],
    )
    return imagenet_weights.load_legacy_h5(model, path, partial=True)
