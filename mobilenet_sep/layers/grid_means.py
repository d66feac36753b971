"""The cell means of the point-cloud convolution in tensor ops: a neighbour grid built and queried
inside the graph, so the layer compiles with XLA and runs on JAX and on a GPU.

The semantics are `neighbour_grid`'s (and the brute-force reference's): point j is in kernel cell
(a, b, c) of point i when floor((p_j - p_i + half_side) / voxel_size) is (a s, b s, c s) in float32
on float32 coordinates. The test is made as the numba query makes it, by comparing d = p_j - p_i
with the six float32 thresholds of `neighbour_grid.cell_thresholds`: comparisons only, no division
a compiler could turn into a multiplication by the reciprocal.

The grid only proposes candidates, with static shapes throughout:

- Cells of edge w >= voxel_size (1 + 2**-9), counted from each cloud's lowest point, coarser along
  an axis where the cloud would span more than G - 2s - 6 of them, so a cloud always fits a dense
  table of G**3 cells (G = `grid_side(stride)`: 32 for the paper's strides). A far outlier makes the
  cells coarser and the query slower, never wrong.
- Cell keys (z fastest) are sorted per cloud; a segment sum of ones and a cumulative sum give each
  cell's first sorted position (the table), so no cell is looked up by search.
- A kernel cell, widened by a rounding margin, is narrower than a grid cell, so it overlaps 2 x 2 x 2
  grid cells: four (x, y) columns, each two cells long in z, that is four ranges of sorted points.
- Every point walks the candidates of its 27 kernel cells side by side, one per cell per step of a
  loop as long as the longest list (a while loop: the trip count is data, the shapes are not),
  keeps those that pass the exact test and adds their features. Means are sums / counts in the
  dtype of the features. Clouds go through in groups of up to 16, so the loop's working arrays
  are a group's, not the batch's.

On a CPU this is several times slower than the numba query (benchmarks/pointcloud_speed.py): the
padded loop and the gathers do work numba's loops skip. It is what runs under XLA, on JAX, on a
GPU and in exported SavedModel, ONNX and TFLite files.

The gradient with respect to the features is the transposed average, computed from the other side:
the points i whose cell k holds j lie in j's mirrored kernel cell 26 - k (the kernel is symmetric up
to which face a cell owns, and the margin covers that), and j gathers upstream[i, k] / count[i, k]
from those that pass the same test. Coordinates get no gradient.
"""

import functools

import keras
import numpy as np
from keras import ops
from keras.tree import map_structure as tree_map

from mobilenet_sep.layers import neighbour_grid
from mobilenet_sep.layers.neighbour_grid import CELLS

_EDGE_FACTOR = 1 + 2.0**-9  # grid cells a little wider than kernel cells: room for the margin
_MARGIN = 2.0**-12  # grid units: far above the float32 rounding of units below G and of the bounds


def grid_side(stride: int) -> int:
    """Cells along each axis of a cloud's grid: a cloud spans at most G - 2s - 6, the rest is the kernel's reach."""
    return max(32, 4 * stride + 16)


def cell_means(points, features, voxel_size: float, stride: int):
    """(batch, N, 27 * C): the mean features of each point's 27 kernel cells, cell-major (0 where empty).

    `points` (batch, N, 3) are taken as float32 and get no gradient; the means are computed in the
    dtype of `features` (batch, N, C), with respect to which they are differentiable.
    """
    voxel_size, stride = neighbour_grid.check_arguments(voxel_size, stride)
    return _compiled(voxel_size, stride)(ops.stop_gradient(ops.cast(points, "float32")), features)


@functools.lru_cache(maxsize=64)
def _compiled(voxel_size, stride):
    """The means with their gradient for one kernel, compiled by the backend's graph compiler, so that a
    call outside a compiled function does not run the loops op by op (inside one, it is inlined)."""

    @ops.custom_gradient
    def averaged(points, features):
        return _averaged(points, features, voxel_size, stride)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(averaged, autograph=False)
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(averaged)
    return averaged


def _averaged(points, features, voxel_size, stride):
    """(means, their gradient function): sums / counts, and the transposed average of an upstream gradient.

    Clouds go through in groups of `_clouds_per_step` (a loop over the groups); the gradient rebuilds
    each group's grid rather than keeping the batch's alive until the backward pass.
    """
    thresholds = tuple(float(value) for value in neighbour_grid.cell_thresholds(voxel_size, stride))
    count, channels = ops.shape(points)[1], features.shape[-1]
    group = _clouds_per_step(points.shape[0])

    def grouped(array, *shape):
        return ops.reshape(array, (-1, group, count, *shape))

    def group_sums(inputs):
        return _Grid(inputs[0], voxel_size, stride, thresholds).sums(inputs[1])

    sums, counts = _over_groups(group_sums, (grouped(points, 3), grouped(features, channels)))
    weights = ops.cast(ops.maximum(counts, 1), features.dtype)[..., None]
    means = ops.reshape(sums / weights, (-1, count, CELLS * channels))

    def gradient(upstream):
        averaged = ops.reshape(upstream, ops.shape(weights)[:-1] + (channels,)) / weights

        def group_gradient(inputs):
            return _Grid(inputs[0], voxel_size, stride, thresholds).transposed_sums(inputs[1])

        transposed = _over_groups(group_gradient, (grouped(points, 3), averaged))
        return ops.zeros_like(points), ops.reshape(transposed, ops.shape(features))

    return means, gradient


def _over_groups(function, arrays):
    """`function` mapped over the leading axis of `arrays` (a loop), or called once when there is one group."""
    if arrays[0].shape[0] == 1:
        return tree_map(lambda result: result[None], function(tuple(array[0] for array in arrays)))
    return ops.map(function, arrays)


def _clouds_per_step(batch):
    """The largest of 16, 8, 4, 2 that divides a known batch size, else 1."""
    return next((size for size in (16, 8, 4, 2) if batch is not None and batch % size == 0), 1)


class _Grid:
    """One call's grid: the points sorted by cell, the table of cell starts, each point's candidate cells."""

    def __init__(self, points, voxel_size, stride, thresholds):
        self.points, self.thresholds, side = points, thresholds, grid_side(stride)
        self.batch, self.count = ops.shape(points)[0], ops.shape(points)[1]
        low = ops.min(points, axis=1, keepdims=True)
        extent = ops.max(points, axis=1, keepdims=True) - low
        edge = ops.maximum(np.float32(voxel_size * _EDGE_FACTOR), extent / np.float32(side - 2 * stride - 6))
        units = (points - low) / edge  # in [0, G - 2s - 6]
        offset = stride + 3  # so every candidate cell falls in [2, G - 2]
        cells = ops.cast(ops.floor(units), "int32") + offset
        keys = (cells[..., 0] * side + cells[..., 1]) * side + cells[..., 2]
        clouds = ops.arange(self.batch, dtype="int32")[:, None]
        self.order = ops.reshape(ops.argsort(keys, axis=1) + clouds * self.count, (-1,))  # point at each position
        self.sorted_points = ops.take(ops.reshape(points, (-1, 3)), self.order, axis=0)
        self.base = clouds * side**3  # where each cloud's table begins
        occupied = ops.segment_sum(
            ops.ones_like(self.order), ops.reshape(keys + self.base, (-1,)), num_segments=self.batch * side**3
        )
        self.starts = ops.concatenate([ops.zeros((1,), "int32"), ops.cumsum(occupied)])
        # lows[..., axis, k]: the lower of the two grid cells kernel index k (0, 1, 2) overlaps along axis.
        ratio = np.float32(voxel_size) / edge  # a kernel cell's edge in grid units, < 1
        offsets = np.array([-stride - 0.5, -0.5, stride - 0.5], np.float32)
        self.lows = ops.cast(ops.floor(units[..., None] + offsets * ratio[..., None] - _MARGIN), "int32") + offset
        self.side = side

    def sums(self, features):
        """(sums (batch, N, 27, C), counts (batch, N, 27)) of the features in each point's kernel cells."""
        by_position = ops.take(ops.reshape(features, (-1, features.shape[-1])), self.order, axis=0)

        def visit(state, position, member):
            total, count = state
            values = ops.take(by_position, position, axis=0)
            return total + ops.where(member[..., None], values, 0), count + ops.cast(member, "int32")

        empty = (
            ops.zeros((self.batch, self.count, CELLS, features.shape[-1]), features.dtype),
            ops.zeros((self.batch, self.count, CELLS), "int32"),
        )
        return self._walk(False, visit, empty)

    def transposed_sums(self, averaged):
        """(batch, N, C): for each point j, the sum of averaged[i, k] over the kernel cells k of i holding j."""
        channels = averaged.shape[-1]
        cell_rows = ops.reshape(self.order[:, None] * CELLS + ops.arange(CELLS, dtype="int32"), (-1,))
        by_position = ops.take(ops.reshape(averaged, (-1, channels)), cell_rows, axis=0)  # row 27 p + k
        cells = ops.arange(CELLS, dtype="int32")

        def visit(gradient, position, member):
            pulled = ops.take(by_position, position * CELLS + cells, axis=0)
            return gradient + ops.sum(ops.where(member[..., None], pulled, 0), axis=2)

        return self._walk(True, visit, ops.zeros((self.batch, self.count, channels), averaged.dtype))

    def _walk(self, transposed, visit, state):
        """Fold `visit(state, position, member)` over the candidates of every point and kernel cell, one
        per step: `position` (batch, N, 27) is a sorted position, `member` whether it passes the exact test.

        Forward, the candidates of point i for cell k are the points near its cell k and the test is
        "j in cell k of i"; transposed, those near its mirrored cell 26 - k and "i in cell k of j".
        """
        before, shift, total = self._ranges(transposed)
        steps = ops.max(total)
        cells = ops.arange(CELLS, dtype="int32")

        def body(step, state):
            run = ops.sum(ops.cast(before[..., 1:] <= step, "int32"), axis=-1, keepdims=True)
            position = ops.where(step < total, ops.take_along_axis(shift, run, axis=-1)[..., 0] + step, 0)
            candidates = ops.take(self.sorted_points, position, axis=0)
            centres = self.points[:, :, None, :]
            code, inside = _cell_codes(centres - candidates if transposed else candidates - centres, self.thresholds)
            member = ops.logical_and(ops.logical_and(inside, ops.equal(code, cells)), step < total)
            return step + 1, visit(state, position, member)

        return ops.while_loop(lambda step, _: step < steps, body, (0, state))[1]

    def _ranges(self, mirrored):
        """Each kernel cell's candidates for every point: the 2 x 2 x 2 grid cells it overlaps (those of
        cell 26 - k if `mirrored`), as four runs of sorted points: one (x, y) column, two cells along z.

        Returns (before, shift, total), (batch, N, 27, 4) and (batch, N, 27): candidate m of a cell is
        in the run r with before[r] <= m < before[r + 1], at sorted position m + shift[r].
        """
        side = self.side
        indices = [index[::-1] if mirrored else index for index in _AXIS_INDEX]
        x, y, z = (ops.take(self.lows[..., axis, :], indices[axis], axis=-1) for axis in range(3))
        columns = ops.stack([x * side + y, x * side + y + 1, (x + 1) * side + y, (x + 1) * side + y + 1], axis=-1)
        bottoms = columns * side + (z + self.base[..., None])[..., None]
        first, last = ops.take(self.starts, bottoms), ops.take(self.starts, bottoms + 2)
        lengths = last - first
        before = ops.cumsum(lengths, axis=-1) - lengths
        return before, first - before, ops.sum(lengths, axis=-1)


_AXIS_INDEX = tuple(np.array([cell // 3 ** (2 - axis) % 3 for cell in range(CELLS)], np.int32) for axis in range(3))
"""Kernel index (0, 1, 2) of each of the 27 cells along x, y, z; reversed, those of the mirrored cells 26 - k."""


def _cell_codes(differences, thresholds):
    """Kernel cell 9a + 3b + c of each difference p_j - p_i (..., 3), and whether it is in one at all.

    Along each axis, how many of the six thresholds d reaches: odd means inside cell 0, s or 2s.
    """
    steps = sum(ops.cast(differences >= np.float32(threshold), "int32") for threshold in thresholds)
    inside = ops.all(ops.equal(steps % 2, 1), axis=-1)
    index = steps // 2
    return index[..., 0] * 9 + index[..., 1] * 3 + index[..., 2], inside
