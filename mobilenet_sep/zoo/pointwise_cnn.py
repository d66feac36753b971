"""The classification network of Hua, Tran, Yeung, "Pointwise Convolutional Neural Networks" (CVPR 2018)."""

import keras

from mobilenet_sep.layers import PointwiseConv3D, SortPoints
from mobilenet_sep.layers.neighbour_grid import check_arguments as check_kernel_arguments
from mobilenet_sep.layers.pointcloud import QUERIES
from mobilenet_sep.utils import checks
from mobilenet_sep.zoo.registry import register_builder

STRIDES = (1, 2, 3, 4)
"""The paper's network: four pointwise convolutions with these a-trous strides, in sequence."""


def _check_arguments(input_shape, classes, voxel_size, filters, fc_units, dropout, query):
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 2 or not checks.is_int(shape[0]) or shape[0] < 1 or shape[1] != 3:
        checks.fail("input_shape", input_shape, "must be (points, 3) with a positive number of points")
    for value, argument in ((classes, "classes"), (filters, "filters"), (fc_units, "fc_units")):
        checks.positive_int(value, argument)
    check_kernel_arguments(voxel_size, 1)
    checks.number(dropout, "dropout", low=0, high=1, high_open=True)
    checks.choice(query, QUERIES, "query")
    return shape


@register_builder("pointwise_cnn")
def PointwiseCNN(
    input_shape: tuple = (2048, 3),
    classes: int = 40,
    voxel_size: float = 0.1,
    filters: int = 9,
    fc_units: int = 512,
    dropout: float = 0.5,
    classifier_activation: str | None = "softmax",
    query: str = "grid",
    name: str = "pointwise_cnn",
) -> keras.Model:
    """The paper's classification network, for clouds of `input_shape = (points, 3)`.

    Points sorted by (x, y, z); four pointwise convolutions of `filters` channels with a-trous
    strides 1, 2, 3, 4 in sequence (the first takes the coordinates as features), each followed by
    SELU; their outputs concatenated (4 * filters per point) and flattened; a fully connected layer
    of `fc_units` with SELU, dropout, and the classifier. `query` picks the convolutions' neighbour
    query (`layers.pointcloud.QUERIES`): "grid" runs everywhere, "numba" is faster on a CPU with TensorFlow.
    """
    shape = _check_arguments(input_shape, classes, voxel_size, filters, fc_units, dropout, query)
    inputs = keras.Input(shape, name="points")
    points = SortPoints(name="sort_points")(inputs)
    features, outputs = points, []
    for index, stride in enumerate(STRIDES, start=1):
        features = PointwiseConv3D(
            filters,
            voxel_size=voxel_size,
            stride=stride,
            query=query,
            kernel_initializer="lecun_normal",
            name=f"conv{index}",
        )([points, features])
        features = keras.layers.Activation("selu", name=f"conv{index}_selu")(features)
        outputs.append(features)
    x = keras.layers.Concatenate(name="concat")(outputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, activation="selu", kernel_initializer="lecun_normal", name="fc1")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, x, name=name)
