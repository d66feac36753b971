"""Neighbour query of the point-cloud pointwise convolution: our two grids against scipy's cKDTree and brute force.

Usage: python benchmarks/neighbour_query.py [--sizes 1024,2048,...,65536] [--stride 1] [--voxel-size 0.1]
       [--density fixed-voxel|fixed-neighbours] [--repeats 3] [--brute-max 16384] [--plot neighbour_query.png]
       [--out benchmarks/results/neighbour_query.json]

Every method produces the same thing for one cloud of N points: for each point, its neighbours in
each of the 27 active kernel cells (checked equal to the numba grid's answer at every size). The clouds
are one synthetic surface (pointcloud_data, --shape, default sphere) in the unit sphere, as
ModelNet's. `fixed-voxel` keeps voxel_size, so the clouds get denser with N (more neighbours per
point, as with more points per ModelNet object); `fixed-neighbours` shrinks voxel_size as
1/sqrt(N / 2048) so each point keeps about as many neighbours as at 2,048 points.

- numba: `neighbour_grid.cell_means_matrix`, the layer's query="numba" (grid built per call, numba).
- grid: `grid_means.cell_means`, the layer's default query="grid" (tensor ops, compiled with XLA),
  on one feature channel: it finds the same cells and averages in the same pass, so its figure
  includes the means (checked equal to the numba matrix's means).
- kd cube: cKDTree.query_pairs within the kernel cube (L-infinity radius half_side), then the
  exact cell test (NumPy) on those pairs; the cube holds the a-trous holes too.
- kd cells: a second cKDTree of the 27 cell centres of every point, paired with the points by
  sparse_distance_matrix (L-infinity radius voxel_size / 2), then the exact cell test.
- kd query: the faster kd-tree variant's tree build and search alone, without the cell test:
  a lower bound for any k-d tree solution, the most generous comparison for the tree.
- brute force: every pair tested (NumPy, in blocks of rows), up to --brute-max points.

Each time is the median of --repeats runs. The crossover is the first N where the kd query alone
is faster than a grid (none if it never is). The seed article claims a k-d tree does not beat a
grid until about 16K points. The figures go to --out with the command, machine and versions.
"""

import argparse
import functools
import os
import statistics
import time

import numpy as np

from mobilenet_sep.data.pointclouds import SHAPES, synthetic_cloud
from mobilenet_sep.layers import neighbour_grid as pointcloud_grid
from mobilenet_sep.speed.measure import time_runs
from mobilenet_sep.utils.files import save_figure
from mobilenet_sep.utils.record import result_record, script_command, write_result

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "neighbour_query.json")

CELL_WEIGHTS = np.array([9, 3, 1])


def cloud(shape, count):
    return synthetic_cloud(np.random.default_rng(count), shape, count).astype(np.float32)


def exact_cells(points, rows, columns, voxel_size, stride):
    """Keep the candidate pairs inside an active cell: (row = i * 27 + cell, column = j), the layer's formula."""
    half, voxel = pointcloud_grid.half_side(voxel_size, stride), np.float32(voxel_size)
    cells = np.floor((points[columns] - points[rows] + half) / voxel).astype(np.int64)
    inside = np.all((cells == 0) | (cells == stride) | (cells == 2 * stride), axis=1)
    return rows[inside] * 27 + (cells[inside] // stride) @ CELL_WEIGHTS, columns[inside]


def numba_query(points, voxel_size, stride):
    indices, values = pointcloud_grid.cell_means_matrix(points[None], voxel_size, stride)
    return indices[:, 0], indices[:, 1], values


@functools.cache
def tensor_grid(voxel_size, stride):
    """The layer's grid query (and means) on one cloud and one feature channel, compiled with XLA."""
    import tensorflow as tf

    from mobilenet_sep.layers import grid_means

    def means(points, feature):
        return grid_means.cell_means(points, feature, voxel_size, stride)

    return tf.function(means, jit_compile=True)


def grid_means_of(points, feature, voxel_size, stride):
    return np.asarray(tensor_grid(voxel_size, stride)(points[None], feature[None, :, None]))[0]


def kd_cube_candidates(points, voxel_size, stride):
    from scipy.spatial import cKDTree

    half = float(pointcloud_grid.half_side(voxel_size, stride)) * (1 + 1e-6)  # closed ball, float margin
    pairs = cKDTree(points).query_pairs(half, p=np.inf, output_type="ndarray").astype(np.int64)
    every = np.arange(len(points))
    return np.concatenate([pairs[:, 0], pairs[:, 1], every]), np.concatenate([pairs[:, 1], pairs[:, 0], every])


def kd_cell_candidates(points, voxel_size, stride):
    from scipy.spatial import cKDTree

    offsets = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) * stride * voxel_size
    centres = (points[:, None, :].astype(np.float64) + offsets).reshape(-1, 3)
    found = cKDTree(centres).sparse_distance_matrix(
        cKDTree(points), voxel_size / 2 * (1 + 1e-6), p=np.inf, output_type="ndarray"
    )
    return (found["i"] // 27).astype(np.int64), found["j"].astype(np.int64)


def brute_force(points, voxel_size, stride, block=256):
    rows, columns = [], []
    for start in range(0, len(points), block):
        chunk = np.arange(start, min(start + block, len(points)))
        chunk_rows, chunk_columns = np.repeat(chunk, len(points)), np.tile(np.arange(len(points)), len(chunk))
        found = exact_cells(points, chunk_rows, chunk_columns, voxel_size, stride)
        rows.append(found[0])
        columns.append(found[1])
    return np.concatenate(rows), np.concatenate(columns)


def median_seconds(function, repeats):
    """(median wall time, the last result) with the package's one timing loop (the caller warms up)."""
    results = []
    seconds = time_runs(lambda: results.append(function()), warmup=0, repeats=repeats, budget_s=float("inf"))
    return statistics.median(seconds), results[-1]


def as_set(pairs):
    return set(zip(pairs[0].tolist(), pairs[1].tolist(), strict=True))


def measure(points, voxel_size, stride, repeats, brute_max):
    count = len(points)
    for warm_up in (numba_query, kd_cube_candidates, kd_cell_candidates):  # numba's compilation, scipy's import
        warm_up(points[:8], voxel_size, stride)
    row = {"points": count, "voxel_size": voxel_size}
    row["numba"], (rows, columns, values) = median_seconds(lambda: numba_query(points, voxel_size, stride), repeats)
    row["pairs"] = len(rows)
    expected = as_set((rows, columns))
    feature = np.random.default_rng(0).normal(size=count).astype(np.float32)
    grid_means_of(points, feature, voxel_size, stride)  # XLA's compilation for this size
    row["grid"], means = median_seconds(lambda: grid_means_of(points, feature, voxel_size, stride), repeats)
    reference_means = np.bincount(rows, values * feature[columns], minlength=count * 27)
    if np.abs(means.reshape(-1) - reference_means).max() > 1e-5 * max(np.abs(reference_means).max(), 1e-30):
        raise AssertionError(f"the tensor grid's means disagree with the numba grid's at N={count}")
    for name, candidates in (("kd cube", kd_cube_candidates), ("kd cells", kd_cell_candidates)):
        row[f"{name} query"], found = median_seconds(lambda c=candidates: c(points, voxel_size, stride), repeats)
        start = time.perf_counter()
        result = exact_cells(points, *found, voxel_size, stride)
        row[name] = row[f"{name} query"] + time.perf_counter() - start
        if as_set(result) != expected:
            raise AssertionError(f"{name} disagrees with the grid at N={count}")
    row["kd query"] = min(row["kd cube query"], row["kd cells query"])
    row["brute"] = None
    if count <= brute_max:
        row["brute"], result = median_seconds(lambda: brute_force(points, voxel_size, stride), 1)
        if as_set(result) != expected:
            raise AssertionError(f"brute force disagrees with the grid at N={count}")
    return row


def plot(rows, path, title):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    sizes = [row["points"] for row in rows]
    styles = (("numba", "o-"), ("grid", "D-"), ("kd cube", "s--"), ("kd cells", "^--"), ("kd query", "v:"))
    styles += (("brute", "x-."),)
    for key, style in styles:
        pairs = [(size, row[key]) for size, row in zip(sizes, rows, strict=True) if row[key] is not None]
        if pairs:
            axes.plot(*zip(*pairs, strict=True), style, label=key)
    axes.set(xscale="log", yscale="log", xlabel="points per cloud", ylabel="seconds per query", title=title)
    axes.set_xticks(sizes, [f"{size // 1024}K" for size in sizes])
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048,4096,8192,16384,32768,65536")
    parser.add_argument("--shape", choices=SHAPES, default="sphere", help="the synthetic surface sampled")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--voxel-size", type=float, default=0.1)
    parser.add_argument("--density", choices=("fixed-voxel", "fixed-neighbours"), default="fixed-voxel")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--brute-max", type=int, default=16384)
    parser.add_argument("--plot", default="neighbour_query.png")
    parser.add_argument("--out", default=RESULT, help=f"result file (default {os.path.relpath(RESULT)})")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    rows = []
    header = (
        f"{'N':>6} {'voxel':>7} {'pairs':>10} {'numba':>8} {'grid':>8} {'kd cube':>8} {'kd cells':>9} "
        f"{'kd query':>9} {'brute':>8}"
    )
    print(
        f"{args.shape}, stride {args.stride}, {args.density}; seconds per query of one cloud (median of {args.repeats})"
    )
    print(header)
    for count in (int(size) for size in args.sizes.split(",")):
        voxel = args.voxel_size
        if args.density == "fixed-neighbours":
            voxel = args.voxel_size / np.sqrt(count / 2048)
        row = measure(cloud(args.shape, count), voxel, args.stride, args.repeats, args.brute_max)
        rows.append(row)
        brute = f"{row['brute']:8.4f}" if row["brute"] is not None else f"{'-':>8}"
        print(
            f"{count:>6} {voxel:7.4f} {row['pairs']:>10} {row['numba']:8.4f} {row['grid']:8.4f} {row['kd cube']:8.4f} "
            f"{row['kd cells']:9.4f} {row['kd query']:9.4f} {brute}",
            flush=True,
        )
    crossovers = {}
    for grid in ("numba", "grid"):
        crossovers[grid] = next((row["points"] for row in rows if row["kd query"] < row[grid]), None)
        if crossovers[grid] is None:
            largest = rows[-1]["points"]
            print(f"crossover ({grid}): none; faster than even the kd-tree's bare query at every N up to {largest}")
        else:
            print(f"crossover ({grid}): the kd-tree's bare query beats it from N = {crossovers[grid]}")
    plot(rows, args.plot, f"neighbour query, stride {args.stride}, {args.density}")
    print(f"plot written to {args.plot}")
    figures = {"shape": args.shape, "stride": args.stride, "density": args.density, "seconds": rows}
    figures["crossover_points"] = crossovers
    full = args.sizes == "1024,2048,4096,8192,16384,32768,65536"
    record = result_record(figures, command=script_command(), short_run=None if full else f"sizes {args.sizes}")
    print(f"result written to {write_result(args.out, record)}")


if __name__ == "__main__":
    main()
