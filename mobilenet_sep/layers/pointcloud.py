"""Point-cloud pointwise convolution (Hua, Tran, Yeung, "Pointwise Convolutional Neural Networks",
CVPR 2018) as a Keras layer, and the point sorting its network starts with.

Not MobileNet's 1x1 "pointwise" convolution (`layers.PointwiseConv`): here a kernel of 3 x 3 x 3
cells of edge `voxel_size` is centred on every point of a cloud, each cell averages the features of
the points inside it, and the 27 means are weighted and summed (eq. 1 of the paper):

    x_i_out = sum over cells k of W_k^T * mean of x_j over the points j in cell k of point i

An empty cell adds nothing; the centre cell holds point i itself. With a-trous stride s the cube is
2s + 1 cells wide and only the cells with index 0, s or 2s along every axis are used. Every point
gets an output (no subsampling). Gradients flow to the features and the weights; coordinates get
none, as in the paper.

Two neighbour queries give the same cell means (the same cells, exactly; sums in the features' dtype):

- `query="grid"` (the default): `grid_means`, a grid built and queried in tensor ops inside the
  graph. It runs on every Keras backend (TensorFlow, with or without XLA, and JAX), on a GPU, and in
  exported files; the layer `supports_jit`.
- `query="numba"`: `neighbour_grid`, a compiled CPU kernel called through `tf.numpy_function`:
  TensorFlow only, outside XLA, not exportable, and several times faster on a CPU
  (benchmarks/pointcloud_speed.py), so CPU training recipes ask for it. Each half of the batch gets
  its own query and sparse product: TensorFlow runs that product on one thread, and two halves let
  its scheduler keep both cores of a small machine busy (benchmarks/results/pointcloud_speed.json).
"""

import functools

import keras
from keras import ops

from mobilenet_sep.layers import grid_means, neighbour_grid
from mobilenet_sep.layers.neighbour_grid import CELLS
from mobilenet_sep.layers.separable import PACKAGE, KernelLayer
from mobilenet_sep.utils import checks

QUERIES = ("grid", "numba")
"""The neighbour queries of `PointwiseConv3D`: tensor ops in the graph, or the numba kernel (TensorFlow, CPU)."""


def batch_halves(array):
    """The first and second half of a batch (the first has one cloud fewer when the batch is odd)."""
    half = ops.shape(array)[0] // 2
    return array[:half], array[half:]


def _tensorflow():
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "The numba neighbour query needs Keras' TensorFlow backend (query='grid' runs on every backend). "
            f"Received: KERAS_BACKEND={keras.backend.backend()!r}"
        )
    import tensorflow as tf

    return tf


def _concrete_points(points):
    """The coordinates as a NumPy array when they are values (an eager call), None inside a traced graph."""
    if not ops.is_tensor(points):
        return points
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return points.numpy() if tf.executing_eagerly() else None
    if keras.backend.backend() == "jax":
        import jax

        return None if isinstance(points, jax.core.Tracer) else ops.convert_to_numpy(points)
    return None


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
    divisions for the cell means, which are computed in the dtype of the features.

    Args:
        filters: output channels.
        voxel_size: edge of a kernel cell, in the units of the coordinates.
        stride: a-trous stride s >= 1: the kernel cube is 2s + 1 cells wide, cells 0, s, 2s count.
        query: "grid" (tensor ops: every backend, XLA, GPU, export) or "numba" (TensorFlow on a
            CPU, outside XLA, faster there); both find the same cells.
        use_bias, kernel_*/bias_* initializer, regularizer, constraint: as in Keras.
    """

    def __init__(self, filters, voxel_size=0.1, stride=1, query="grid", **kwargs):
        super().__init__(**kwargs)
        self.filters = checks.positive_int(filters, "filters")
        self.voxel_size, self.stride = neighbour_grid.check_arguments(voxel_size, stride)
        self.query = checks.choice(query, QUERIES, "query")
        if self.query == "numba":
            _tensorflow()
        self.supports_jit = self.query == "grid"  # tf.numpy_function cannot be compiled by XLA

    def build(self, input_shape):
        points_shape, features_shape = _split_inputs(self, input_shape)
        channels = _check_cloud_shapes(self, points_shape, features_shape)
        self._add_kernel_and_bias((CELLS, channels, self.filters), self.filters)

    def cell_means(self, points, features):
        """(batch, N, 27 * C): the mean features of each point's 27 cells, cell-major."""
        if self.query == "grid":
            return grid_means.cell_means(points, features, self.voxel_size, self.stride)
        return self._numba_cell_means(points, features)

    def _numba_cell_means(self, points, features):
        tf = _tensorflow()
        shape = tf.shape(features)
        batch, count, channels = shape[0], shape[1], features.shape[-1]
        query = functools.partial(neighbour_grid.cell_means_matrix, voxel_size=self.voxel_size, stride=self.stride)
        indices, values = tf.numpy_function(
            query,
            [tf.stop_gradient(tf.cast(points, "float32"))],
            [tf.int32, tf.float32],
            stateful=False,
        )
        indices.set_shape([None, 2])
        rows, columns = batch * count * CELLS, batch * count
        # The query's weights are float32 1 / |cell|: recover |cell| exactly and divide in the features' dtype.
        weights = 1 / tf.round(1 / tf.cast(values, features.dtype))
        # The raw op takes the query's int32 indices as they are (tf.sparse wants int64: twice the bytes).
        means = tf.raw_ops.SparseTensorDenseMatMul(
            a_indices=indices,
            a_values=weights,
            a_shape=tf.cast(tf.stack([rows, columns]), tf.int64),
            b=tf.reshape(features, [columns, channels]),
        )
        return tf.reshape(means, [batch, count, CELLS * channels])

    def call(self, inputs):
        points, features = _split_inputs(self, inputs)
        channels = _check_cloud_shapes(self, points.shape, features.shape)
        values = _concrete_points(points)
        if values is not None:
            # Eager calls raise the query's ValueError itself (inside a graph the numba query raises
            # InvalidArgumentError, and the grid gives no error: a NaN gives NaN means).
            neighbour_grid.check_points(values, self.voxel_size)
        kernel = ops.reshape(self.kernel, (CELLS * channels, self.filters))
        if self.query == "grid":
            return self._add_bias(ops.matmul(self.cell_means(points, features), kernel))
        # TensorFlow's sparse product runs on one thread: two halves of the batch, each with its own
        # query and product, give its scheduler independent work for both cores.
        parts = [
            ops.matmul(self._numba_cell_means(part_points, part_features), kernel)
            for part_points, part_features in zip(batch_halves(points), batch_halves(features), strict=True)
        ]
        return self._add_bias(ops.concatenate(parts, axis=0))

    def compute_output_shape(self, input_shape):
        points_shape, features_shape = _split_inputs(self, input_shape)
        _check_cloud_shapes(self, points_shape, features_shape)
        return (*tuple(features_shape)[:2], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"filters": self.filters, "voxel_size": self.voxel_size, "stride": self.stride, "query": self.query}
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SortPoints(keras.layers.Layer):
    """Reorder each cloud's points by x, then y, then z (stable), as the paper's authors do.

    The network flattens per-point features into one vector, so point i must mean the same place
    in every cloud; sorting gives clouds of the same shape the same order. (`keras.ops.argsort` is
    stable on the TensorFlow and JAX backends.)
    """

    def call(self, points):
        for axis in (2, 1, 0):  # least significant key first: each stable sort keeps the previous order
            order = ops.argsort(points[..., axis], axis=-1)
            points = ops.take_along_axis(points, order[..., None], axis=1)
        return points

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
