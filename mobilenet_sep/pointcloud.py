"""Point-cloud pointwise convolution (Hua, Tran, Yeung, "Pointwise Convolutional Neural Networks",
CVPR 2018) as a Keras layer, and the paper's classification network.

Not MobileNet's 1x1 "pointwise" convolution (`layers.PointwiseConv`): here a kernel of 3 x 3 x 3
cells of edge `voxel_size` is centred on every point of a cloud, each cell averages the features of
the points inside it, and the 27 means are weighted and summed (eq. 1 of the paper):

    x_i_out = sum over cells k of W_k^T * mean of x_j over the points j in cell k of point i

An empty cell adds nothing; the centre cell holds point i itself. With a-trous stride s the cube is
2s + 1 cells wide and only the cells with index 0, s or 2s along every axis are used. Every point
gets an output (no subsampling). Gradients flow to the features and the weights; coordinates get
none, as in the paper. The neighbour query is `pointcloud_grid` (a grid built per call); the cell
means are a sparse matrix product, so TensorFlow's own gradients of that product give the paper's
dL/dx and dL/dW.

The layers run on Keras' TensorFlow backend (the query is a numba kernel called through
`tf.numpy_function`, which XLA cannot compile: models holding them run without XLA).
"""

import functools

import keras

from mobilenet_sep import pointcloud_grid, profiler
from mobilenet_sep.layers import KernelLayer
from mobilenet_sep.pointcloud_grid import CELLS

PACKAGE = "mobilenet_sep"

STRIDES = (1, 2, 3, 4)
"""The paper's network: four pointwise convolutions with these a-trous strides, in sequence."""


def _tensorflow():
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "The point-cloud layers need Keras' TensorFlow backend. "
            f"Received: KERAS_BACKEND={keras.backend.backend()!r}"
        )
    import tensorflow as tf

    return tf


def _check_cloud_shapes(layer, points_shape, features_shape):
    """Points (batch, N, 3) and features (batch, N, C) with the same N; returns C."""
    points_shape, features_shape = tuple(points_shape), tuple(features_shape)
    if len(points_shape) != 3 or points_shape[-1] != 3:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' expects points of shape (batch, N, 3). "
            f"Received: points.shape={points_shape}"
        )
    if len(features_shape) != 3 or features_shape[-1] is None:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' expects features of shape (batch, N, channels) with known "
            f"channels. Received: features.shape={features_shape}"
        )
    for axis, what in ((0, "batch sizes"), (1, "point counts")):
        if None not in (points_shape[axis], features_shape[axis]) and points_shape[axis] != features_shape[axis]:
            raise ValueError(
                f"{type(layer).__name__} '{layer.name}' needs points and features with the same {what}. "
                f"Received: points.shape={points_shape}, features.shape={features_shape}"
            )
    return features_shape[-1]


def _split_inputs(layer, inputs):
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' is called on [points, features]. Received: inputs={inputs!r}"
        )
    return inputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class PointwiseConv3D(KernelLayer):
    """Hua et al.'s pointwise convolution: called on `[points (batch, N, 3), features (batch, N, C)]`.

    Returns features (batch, N, filters). The kernel has shape (27, C, filters); cell (a, b, c)
    along (x, y, z), each in {0, 1, 2}, is row 9a + 3b + c (0 is the low side, 1 the centre).
    Cost per point: 27 * C * filters multiply-adds, plus C additions per neighbour and 27 * C
    divisions for the cell means.

    Args:
        filters: output channels.
        voxel_size: edge of a kernel cell, in the units of the coordinates.
        stride: a-trous stride s >= 1: the kernel cube is 2s + 1 cells wide, cells 0, s, 2s count.
        use_bias, kernel_*/bias_* initializer, regularizer, constraint: as in Keras.
    """

    def __init__(self, filters, voxel_size=0.1, stride=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"`filters` must be a positive int. Received: filters={filters!r}")
        self.filters = filters
        self.voxel_size, self.stride = pointcloud_grid.check_arguments(voxel_size, stride)
        self.supports_jit = False  # the neighbour query runs outside the graph compiler
        _tensorflow()

    def build(self, input_shape):
        points_shape, features_shape = _split_inputs(self, input_shape)
        channels = _check_cloud_shapes(self, points_shape, features_shape)
        self._add_kernel_and_bias((CELLS, channels, self.filters), self.filters)

    def cell_means(self, points, features):
        """(batch, N, 27 * C): the mean features of each point's 27 cells, cell-major."""
        tf = _tensorflow()
        shape = tf.shape(features)
        batch, count, channels = shape[0], shape[1], features.shape[-1]
        query = functools.partial(pointcloud_grid.cell_means_matrix, voxel_size=self.voxel_size, stride=self.stride)
        indices, values = tf.numpy_function(
            query, [tf.stop_gradient(tf.cast(points, "float32"))], [tf.int32, tf.float32], stateful=False
        )
        indices.set_shape([None, 2])
        rows, columns = batch * count * CELLS, batch * count
        # The raw op takes the query's int32 indices as they are (tf.sparse wants int64: twice the bytes).
        means = tf.raw_ops.SparseTensorDenseMatMul(
            a_indices=indices,
            a_values=tf.cast(values, features.dtype),
            a_shape=tf.cast(tf.stack([rows, columns]), tf.int64),
            b=tf.reshape(features, [columns, channels]),
        )
        return tf.reshape(means, [batch, count, CELLS * channels])

    def call(self, inputs):
        points, features = _split_inputs(self, inputs)
        channels = _check_cloud_shapes(self, points.shape, features.shape)
        if keras.ops.is_tensor(points) and _tensorflow().executing_eagerly():
            # Eager calls raise the query's ValueError itself (inside a graph it arrives as InvalidArgumentError).
            pointcloud_grid.check_points(keras.ops.convert_to_numpy(points), self.voxel_size)
        means = self.cell_means(points, features)
        kernel = keras.ops.reshape(self.kernel, (CELLS * channels, self.filters))
        return self._add_bias(keras.ops.matmul(means, kernel))

    def compute_output_shape(self, input_shape):
        points_shape, features_shape = _split_inputs(self, input_shape)
        _check_cloud_shapes(self, points_shape, features_shape)
        return (*tuple(features_shape)[:2], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "voxel_size": self.voxel_size, "stride": self.stride})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SortPoints(keras.layers.Layer):
    """Reorder each cloud's points by x, then y, then z (stable), as the paper's authors do.

    The network flattens per-point features into one vector, so point i must mean the same place
    in every cloud; sorting gives clouds of the same shape the same order.
    """

    def call(self, points):
        tf = _tensorflow()
        for axis in (2, 1, 0):  # least significant key first: each stable sort keeps the previous order
            order = tf.argsort(points[..., axis], axis=-1, stable=True)
            points = tf.gather(points, order, axis=1, batch_dims=1)
        return points

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def count_pointwise_conv3d(layer, input_shape, output_shape):
    """Profiler rows: the cell means (pooling: 27 * C divisions per point; the neighbour sums, C
    additions per point in a cell, depend on the cloud and are left out) and the kernel (27 * C *
    filters multiply-adds per point)."""
    points, channels = input_shape[0][0], input_shape[1][-1]
    averaging = profiler.LayerCost(
        f"{layer.name}/cell_means",
        "pooling",
        points * CELLS * channels,
        output_shape=(points, CELLS * channels),
        note="+ C additions per neighbour in a cell (data-dependent)",
    )
    kernel = profiler.LayerCost(
        layer.name,
        "standard",
        points * CELLS * channels * layer.filters,
        params=layer.count_params(),
        kernel_weights=CELLS * channels * layer.filters,
        kernel=(3, 3, 3),
        stride=(1, 1, 1),
        dilation=(layer.stride,) * 3,
        input_shape=(points, CELLS * channels),
    )
    return [averaging, kernel]


profiler.register_counter(PointwiseConv3D, count_pointwise_conv3d)
profiler.register_counter(
    SortPoints, lambda layer, input_shape, output_shape: profiler.LayerCost(layer.name, "layout", 0)
)


def _check_network_arguments(num_points, classes, voxel_size, filters, fc_units, dropout):
    for value, argument in (
        (num_points, "num_points"),
        (classes, "classes"),
        (filters, "filters"),
        (fc_units, "fc_units"),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{argument}` must be a positive int. Received: {argument}={value!r}")
    pointcloud_grid.check_arguments(voxel_size, 1)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")


def PointwiseCNN(
    num_points=2048,
    classes=40,
    voxel_size=0.1,
    filters=9,
    fc_units=512,
    dropout=0.5,
    classifier_activation="softmax",
    name="pointwise_cnn",
):
    """The paper's classification network, for clouds of `num_points` points (batch, N, 3).

    Points sorted by (x, y, z); four pointwise convolutions of `filters` channels with a-trous
    strides 1, 2, 3, 4 in sequence (the first takes the coordinates as features), each followed by
    SELU; their outputs concatenated (4 * filters per point) and flattened; a fully connected layer
    of `fc_units` with SELU, dropout, and the classifier.
    """
    _check_network_arguments(num_points, classes, voxel_size, filters, fc_units, dropout)
    inputs = keras.Input((num_points, 3), name="points")
    points = SortPoints(name="sort_points")(inputs)
    features, outputs = points, []
    for index, stride in enumerate(STRIDES, start=1):
        features = PointwiseConv3D(
            filters, voxel_size=voxel_size, stride=stride, kernel_initializer="lecun_normal", name=f"conv{index}"
        )([points, features])
        features = keras.layers.Activation("selu", name=f"conv{index}_selu")(features)
        outputs.append(features)
    x = keras.layers.Concatenate(name="concat")(outputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, activation="selu", kernel_initializer="lecun_normal", name="fc1")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, x, name=name)
