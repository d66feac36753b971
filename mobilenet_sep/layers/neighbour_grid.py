"""The numba neighbour query of the point-cloud pointwise convolution (`query="numba"`): a uniform
grid built per call on the CPU, and the definitions both queries share (`CELLS`, the argument and
point checks, `half_side`, `cell_thresholds`; the other query is `grid_means`, in tensor ops).

For every point i of a cloud and each of the 27 active cells of its kernel (Hua et al. 2018), the
points j in that cell. With a-trous stride s the kernel cube centred on p_i is 2s + 1 cells wide;
p_j falls in cell `floor((p_j - p_i + half_side) / voxel_size)` along each axis, half_side =
(2s + 1) * voxel_size / 2, and only the cells whose index along every axis is 0, s or 2s count.
The formula is evaluated exactly as written, in float32 on float32 coordinates: it is monotone in
d = p_j - p_i, so six float32 thresholds on d, found once per call by bisection, decide it
without a division per pair (`cell_thresholds`).

The grid has cells of edge `voxel_size`, counted from each cloud's lowest point. Points are sorted
by grid column (x, y), then by height z, and a hash table maps each occupied column to its run,
so memory follows the points, not the cloud's extent (a far outlier costs nothing). A kernel cell
is centred on p_i, not on the grid, so it overlaps two grid cells along each axis; the points
whose "shifted cell" floor(p / voxel_size - 1/2) is the same overlap the same grid cells. Such a
group collects the points of those cells once, keeps those within its members' kernel cells
(a cheap bounds test), and tests each member against them with the exact formula. Bounds are
widened by a rounding margin, so no point the exact test would keep is ever missed.

The loops are compiled with numba (it installs with pip; no compiler needed). One call is
single-threaded and releases the GIL, so TensorFlow runs the queries of independent layers on
different cores at once.
"""

import math

import numba
import numpy as np

from mobilenet_sep.utils import checks

CELLS = 27
"""Active cells of every kernel; cell (a, b, c) along (x, y, z), each in {0, 1, 2}, is number 9a + 3b + c."""

COORDINATE_LIMIT = 2.0**40
"""|coordinate| / voxel_size must stay below this, so that grid units keep sub-cell precision in float64."""

EXTENT_LIMIT = 2**20
"""A cloud may span fewer grid cells than this along each axis: a cell's (x, y, z) packs into one int64."""


def check_arguments(voxel_size, stride):
    """Validate the two numbers that shape a kernel; ValueError naming the bad one."""
    return checks.number(voxel_size, "voxel_size", low=0, low_open=True), checks.positive_int(stride, "stride")


def half_side(voxel_size, stride):
    """Half the kernel cube's side as the float32 the cell formula uses."""
    return np.float32((2 * stride + 1) * voxel_size / 2)


def cell_thresholds(voxel_size, stride):
    """Where the cell formula steps: for b in (0, 1, s, s + 1, 2s, 2s + 1), the least float32 d with
    floor((d + half_side) / voxel_size) >= b in float32 arithmetic.

    The formula is monotone in d, so comparing d with these six numbers gives exactly its result
    (found by bisection over the ordered float32 values), without a division per neighbour.
    """
    half, voxel = half_side(voxel_size, stride), np.float32(voxel_size)

    def as_float(key):  # ordered 32-bit key -> float32: keys grow with the value
        bits = key ^ 0x80000000 if key >= 0x80000000 else ~key & 0xFFFFFFFF
        return np.array([bits], np.uint32).view(np.float32)[0]

    def key_of(value):
        bits = int(np.array([value], np.float32).view(np.uint32)[0])
        return bits ^ 0x80000000 if bits < 0x80000000 else ~bits & 0xFFFFFFFF

    thresholds = []
    for boundary in (0, 1, stride, stride + 1, 2 * stride, 2 * stride + 1):
        below, at = key_of(-np.inf), key_of(np.inf)
        while at - below > 1:
            middle = (below + at) // 2
            if np.floor((as_float(middle) + half) / voxel) >= boundary:
                at = middle
            else:
                below = middle
        thresholds.append(as_float(at))
    return np.array(thresholds, np.float32)


def check_points(points, voxel_size):
    """Points as a float32 array [batch, points, 3]; ValueError for NaN, infinity or a grid too large."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"Points must have shape (batch, points, 3). Received: points.shape={points.shape}")
    if not np.isfinite(points).all():
        where = tuple(int(index) for index in np.argwhere(~np.isfinite(points))[0])
        raise ValueError(
            f"Point coordinates must be finite. Received: points[{where[0]}, {where[1]}]={points[where[:2]].tolist()}"
        )
    if points.size == 0:  # no clouds, or clouds of no points
        return points
    largest = float(np.abs(points).max())
    if largest / voxel_size >= COORDINATE_LIMIT:
        raise ValueError(
            f"Coordinates are too large for voxel_size={voxel_size} (|x| / voxel_size must stay below 2**40). "
            f"Received: max |coordinate|={largest}"
        )
    extent = float((points.max(axis=1).astype(np.float64) - points.min(axis=1)).max())
    if extent / voxel_size >= EXTENT_LIMIT:
        raise ValueError(
            f"A cloud spans too many cells of voxel_size={voxel_size} (at most 2**20 along an axis). "
            f"Received: largest extent={extent}"
        )
    return points


def cell_means_matrix(points, voxel_size, stride):
    """The sparse matrix that averages features over the 27 active cells of every point.

    Row `(cloud * N + i) * 27 + cell` holds 1 / |cell| at column `cloud * N + j` for each point j in
    that cell of point i (cells numbered as in `CELLS`); features [batch * N, C] times this matrix
    are the cell means, and an empty cell's row is empty (its mean is 0).

    Args:
        points: [batch, N, 3] coordinates (converted to float32).
        voxel_size, stride: the kernel's cell edge and a-trous stride.

    Returns:
        (indices, values): int32 [nonzeros, 2] (row, column) and float32 [nonzeros]. The nonzeros of
        one point (rows `point * 27` to `point * 27 + 26`) are consecutive, in no particular order.
    """
    voxel_size, stride = check_arguments(voxel_size, stride)
    points = check_points(points, voxel_size)
    if points.shape[0] * points.shape[1] * CELLS >= 2**31:
        raise ValueError(
            f"Too many points for 32-bit indices (batch * N * 27 < 2**31). Received: points.shape={points.shape}"
        )
    if points.size == 0:
        return np.empty((0, 2), np.int32), np.empty(0, np.float32)
    largest = float(np.abs(points).max())
    # Float32 rounding of the cell formula, in grid units, is below 2**-22 * (|p| / v + 2s + 2); allow 4x that.
    margin = 1e-6 * (largest / voxel_size + 2 * stride + 2)
    thresholds = tuple(cell_thresholds(voxel_size, stride))
    return _query_batch(points, voxel_size, half_side(voxel_size, stride), stride, margin, thresholds)


# Compiled code below: plain loops over numpy arrays.


def _compile(function):
    """numba's njit, keeping the machine code on disk so only a machine's first call compiles (about 10 s).

    Where no cache folder is writable (a read-only install without a home), numba refuses
    `cache=True`; the function is then compiled once per process instead.
    """
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


_AXIS_BITS = 21  # a grid cell (x, y, z), counted from the cloud's lowest cell, packs into one int64 key


@_compile
def _pack(x, y, z):
    return (x << (2 * _AXIS_BITS)) | (y << _AXIS_BITS) | z


@_compile
def _slot(key, slots):
    """Fibonacci hashing: the high bits of key * 2**64 / golden ratio, wrapping as unsigned."""
    mixed = np.uint64(key) * np.uint64(11400714819323198485)
    return np.int64((mixed >> np.uint64(32)) & np.uint64(slots - 1))


@_compile
def _sorted_by_key(keys):
    """Stable order of `keys` and the start of each run of equal keys (plus the end)."""
    order = np.argsort(keys, kind="mergesort")
    starts = [0]
    for position in range(1, keys.shape[0]):
        if keys[order[position]] != keys[order[position - 1]]:
            starts.append(position)
    starts.append(keys.shape[0])
    return order, np.array(starts, np.int64)


@_compile
def _columns(cells):
    """The occupied grid columns (x, y) as a hash table: key -> run of `order`, the points sorted by
    column and then by height z; returns (order, heights of `order`, table keys, table runs)."""
    n = cells.shape[0]
    keys = np.empty(n, np.int64)
    for i in range(n):
        keys[i] = _pack(cells[i, 0], cells[i, 1], cells[i, 2])
    order, starts = _sorted_by_key(keys)
    slots = 2
    while slots < 4 * n:  # load factor <= 1/4 keeps linear probing short, misses included
        slots *= 2
    table_keys = np.full(slots, -1, np.int64)
    table_runs = np.empty((slots, 2), np.int64)
    run_start = 0
    for position in range(1, n + 1):
        column = keys[order[run_start]] >> _AXIS_BITS
        if position < n and keys[order[position]] >> _AXIS_BITS == column:
            continue
        slot = _slot(column, slots)
        while table_keys[slot] != -1:
            slot = (slot + 1) & (slots - 1)
        table_keys[slot] = column
        table_runs[slot, 0], table_runs[slot, 1] = run_start, position
        run_start = position
    return order, cells[order, 2], table_keys, table_runs


@_compile
def _window(low, high, half, voxel_size, stride, margin, size, bounds, ranges):
    """Where the kernel cells 0, s, 2s of points with coordinates in [low, high] lie along one axis
    (grid units, counted from the lowest cell). Writes their extents, widened by `margin`, into
    `bounds` (3 x 2) and the grid cells [first, last] they overlap, merged, clipped and ascending,
    into `ranges` (3 x 2); returns how many ranges there are."""
    count = 0
    for index, cell in enumerate((0, stride, 2 * stride)):
        bounds[index, 0] = low + (cell * voxel_size - half) / voxel_size - margin
        bounds[index, 1] = high + ((cell + 1) * voxel_size - half) / voxel_size + margin
        first, last = max(math.floor(bounds[index, 0]), 0), min(math.floor(bounds[index, 1]), size - 1)
        if first > last:
            continue
        if count > 0 and first <= ranges[count - 1, 1] + 1:
            ranges[count - 1, 1] = max(ranges[count - 1, 1], last)
        else:
            ranges[count, 0], ranges[count, 1] = first, last
            count += 1
    return count


@numba.njit(inline="always")
def _within(value, bounds):
    """Whether a coordinate lies in one of an axis's three kernel-cell extents (branch-free)."""
    return (
        ((value >= bounds[0, 0]) & (value <= bounds[0, 1]))
        | ((value >= bounds[1, 0]) & (value <= bounds[1, 1]))
        | ((value >= bounds[2, 0]) & (value <= bounds[2, 1]))
    )


@numba.njit(inline="always")
def _steps(difference, thresholds):
    """How many of the six thresholds a coordinate difference reaches: odd means inside kernel cell
    0, s or 2s along that axis (1, 3, 5), even means before, between or after them."""
    t0, t1, t2, t3, t4, t5 = thresholds
    return (
        np.int32(difference >= t0)
        + np.int32(difference >= t1)
        + np.int32(difference >= t2)
        + np.int32(difference >= t3)
        + np.int32(difference >= t4)
        + np.int32(difference >= t5)
    )


@_compile
def _collect(cloud, units, window, column_grid, candidates, xs, ys, zs):
    """Gather the points of a group's window: those in the grid cells of `ranges` that also lie
    within the kernel-cell extents `bounds` along every axis. Fills `candidates` (indices) and `xs`,
    `ys`, `zs` (their coordinates, contiguous) and returns how many there are."""
    bounds, ranges, counts = window
    order, heights, table_keys, table_runs = column_grid
    mask = table_keys.shape[0] - 1
    if counts[0] == 0 or counts[1] == 0 or counts[2] == 0:
        return 0
    z_first, z_last = ranges[2, 0, 0], ranges[2, counts[2] - 1, 1]
    found = 0
    for xr in range(counts[0]):
        for x in range(ranges[0, xr, 0], ranges[0, xr, 1] + 1):
            for yr in range(counts[1]):
                for y in range(ranges[1, yr, 0], ranges[1, yr, 1] + 1):
                    column = (x << _AXIS_BITS) | y
                    slot = _slot(column, mask + 1)
                    while table_keys[slot] != -1 and table_keys[slot] != column:
                        slot = (slot + 1) & mask
                    if table_keys[slot] == -1:
                        continue  # an empty column
                    low, end = table_runs[slot, 0], table_runs[slot, 1]
                    high = end
                    while low < high:  # binary search: the column's first point at height >= z_first
                        middle = (low + high) // 2
                        if heights[middle] < z_first:
                            low = middle + 1
                        else:
                            high = middle
                    for position in range(low, end):
                        if heights[position] > z_last:
                            break
                        j = order[position]
                        candidates[found] = j
                        xs[found], ys[found], zs[found] = cloud[j, 0], cloud[j, 1], cloud[j, 2]
                        found += (
                            _within(units[j, 0], bounds[0])
                            & _within(units[j, 1], bounds[1])
                            & _within(units[j, 2], bounds[2])
                        )
    return found


@_compile
def _query_cloud(cloud, first, voxel_size, half, stride, margin, thresholds, output):
    """Append the nonzeros of one cloud, whose first point has flat index `first`, to `output`.

    `output` is (indices, values, size); returns it, with larger copies of the arrays when they had
    no room left. A point's nonzeros are appended together, in no particular order inside.
    """
    indices, values, size = output
    n = cloud.shape[0]
    units = cloud.astype(np.float64) / voxel_size
    sizes = np.empty(3, np.int64)
    for axis in range(3):  # grid units counted from below the lowest cell: every cell index is >= 1
        units[:, axis] -= math.floor(units[:, axis].min()) - 1.0
        sizes[axis] = math.floor(units[:, axis].max()) + 2
    column_grid = _columns(np.floor(units).astype(np.int64))
    shifted = np.floor(units - 0.5).astype(np.int64)
    group_keys = np.empty(n, np.int64)
    for i in range(n):
        group_keys[i] = _pack(shifted[i, 0], shifted[i, 1], shifted[i, 2])
    group_order, group_starts = _sorted_by_key(group_keys)

    window = (np.empty((3, 3, 2)), np.empty((3, 3, 2), np.int64), np.empty(3, np.int64))
    bounds, ranges, counts = window
    candidates = np.empty(n + 1, np.int64)  # + 1: the branch-free appends write one slot past the last
    xs, ys, zs = np.empty(n + 1, np.float32), np.empty(n + 1, np.float32), np.empty(n + 1, np.float32)
    codes = np.empty(n + 1, np.int32)
    hits, hit_cells = np.empty(n + 1, np.int64), np.empty(n + 1, np.int32)
    cell_sizes = np.empty(CELLS, np.int64)
    for group in range(group_starts.shape[0] - 1):
        members = group_order[group_starts[group] : group_starts[group + 1]]
        for axis in range(3):
            low, high = units[members[0], axis], units[members[0], axis]
            for i in members:
                low, high = min(low, units[i, axis]), max(high, units[i, axis])
            counts[axis] = _window(
                low, high, np.float64(half), voxel_size, stride, margin, sizes[axis], bounds[axis], ranges[axis]
            )
        found = _collect(cloud, units, window, column_grid, candidates, xs, ys, zs)
        if size + members.shape[0] * found > values.shape[0]:
            capacity = max(size + members.shape[0] * found, 2 * values.shape[0])
            grown_indices, grown_values = np.empty((capacity, 2), np.int32), np.empty(capacity, np.float32)
            grown_indices[:size], grown_values[:size] = indices[:size], values[:size]
            indices, values = grown_indices, grown_values
        for i in members:
            px, py, pz = cloud[i, 0], cloud[i, 1], cloud[i, 2]
            for m in range(found):  # the exact cell test, branch-free so that it vectorizes
                sx = _steps(xs[m] - px, thresholds)
                sy = _steps(ys[m] - py, thresholds)
                sz = _steps(zs[m] - pz, thresholds)
                cell = np.int32(9) * (sx >> 1) + np.int32(3) * (sy >> 1) + (sz >> 1)
                codes[m] = cell if sx & sy & sz & 1 else np.int32(-1)
            count = 0
            for m in range(found):
                hits[count], hit_cells[count] = candidates[m], codes[m]
                count += codes[m] >= 0
            cell_sizes[:] = 0
            for h in range(count):
                cell_sizes[hit_cells[h]] += 1
            row = (first + i) * CELLS
            for h in range(count):
                indices[size + h, 0], indices[size + h, 1] = row + hit_cells[h], first + hits[h]
                values[size + h] = 1.0 / cell_sizes[hit_cells[h]]
            size += count
    return indices, values, size


@_compile
def _query_batch(points, voxel_size, half, stride, margin, thresholds):
    """Every cloud's nonzeros, in the layout `cell_means_matrix` returns."""
    batch, n = points.shape[0], points.shape[1]
    output = (np.empty((max(32 * n, 1024), 2), np.int32), np.empty(max(32 * n, 1024), np.float32), 0)
    for cloud in range(batch):
        output = _query_cloud(points[cloud], cloud * n, voxel_size, half, stride, margin, thresholds, output)
        indices, values, size = output
        if cloud == 0 and batch > 1:  # room for the whole batch if the clouds are alike: one allocation
            capacity = max(size * batch + size // 4 * batch, values.shape[0])
            grown_indices, grown_values = np.empty((capacity, 2), np.int32), np.empty(capacity, np.float32)
            grown_indices[:size], grown_values[:size] = indices[:size], values[:size]
            output = (grown_indices, grown_values, size)
    indices, values, size = output
    return indices[:size], values[:size]
