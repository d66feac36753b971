"""Neighbour query of the point-cloud pointwise convolution: our grid against scipy's cKDTree and brute force.

Usage: python benchmarks/neighbour_query.py [--sizes 1024,2048,...,65536] [--stride 1] [--voxel-size 0.1]
       [--density fixed-voxel|fixed-neighbours] [--repeats 3] [--brute-max 16384] [--plot neighbour_query.png]

Every method produces the same thing for one cloud of N points: for each point, its neighbours in
each of the 27 active kernel cells (checked equal to the grid's answer at every size). The clouds
are one synthetic surface (pointcloud_data, --shape, default sphere) in the unit sphere, as
ModelNet's. `fixed-voxel` keeps voxel_size, so the clouds get denser with N (more neighbours per
point, as with more points per ModelNet object); `fixed-neighbours` shrinks voxel_size as
1/sqrt(N / 2048) so each point keeps about as many neighbours as at 2,048 points.

- grid: `pointcloud_grid.cell_means_matrix`, the layer's query (grid built per call, numba).
- kd cube: cKDTree.query_pairs within the kernel cube (L-infinity radius half_side), then the
  exact cell test (NumPy) on those pairs; the cube holds the a-trous holes too.
- kd cells: a second cKDTree of the 27 cell centres of every point, paired with the points by
  sparse_distance_matrix (L-infinity radius voxel_size / 2), then the exact cell test.
- kd query: the faster kd-tree variant's tree build and search alone, without the cell test:
  a lower bound for any k-d tree solution, the most generous comparison for the tree.
- brute force: every pair tested (NumPy, in blocks of rows), up to --brute-max points.

Each time is the median of --repeats runs. The crossover is the first N where the kd query alone
is faster than the grid (none if it never is). The seed article claims a k-d tree does not beat a
grid until about 16K points.
"""

import argparse
import statistics
import time

import numpy as np

from mobilenet_sep import pointcloud_grid
from mobilenet_sep.files import save_figure
from mobilenet_sep.measure import time_runs
from mobilenet_sep.pointcloud_data import SHAPES, synthetic_cloud

CELL_WEIGHTS = np.array([9, 3, 1])


def cloud(shape, count):
    return synthetic_cloud(np.random.default_rng(count), shape, count).astype(np.float32)


def exact_cells(points, rows, columns, voxel_size, stride):
    """Keep the candidate pairs inside an active cell: (row = i * 27 + cell, column = j), the layer's formula."""
    half, voxel = pointcloud_grid.half_side(voxel_size, stride), np.float32(voxel_size)
    cells = np.floor((points[columns] - points[rows] + half) / voxel).astype(np.int64)
    inside = np.all((cells == 0) | (cells == stride) | (cells == 2 * stride), axis=1)
    return rows[inside] * 27 + (cells[inside] // stride) @ CELL_WEIGHTS, columns[inside]


def grid_query(points, voxel_size, stride):
    indices, _ = pointcloud_grid.cell_means_matrix(points[None], voxel_size, stride)
    return indices[:, 0], indices[:, 1]


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
    for warm_up in (grid_query, kd_cube_candidates, kd_cell_candidates):  # numba's compilation, scipy's import
        warm_up(points[:8], voxel_size, stride)
    row = {"points": count, "voxel_size": voxel_size}
    row["grid"], reference = median_seconds(lambda: grid_query(points, voxel_size, stride), repeats)
    row["pairs"] = len(reference[0])
    expected = as_set(reference)
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
    for key, style in (("grid", "o-"), ("kd cube", "s--"), ("kd cells", "^--"), ("kd query", "v:"), ("brute", "x-.")):
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
    args = parser.parse_args()

    rows = []
    header = (
        f"{'N':>6} {'voxel':>7} {'pairs':>10} {'grid':>8} {'kd cube':>8} {'kd cells':>9} {'kd query':>9} {'brute':>8}"
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
            f"{count:>6} {voxel:7.4f} {row['pairs']:>10} {row['grid']:8.4f} {row['kd cube']:8.4f} "
            f"{row['kd cells']:9.4f} {row['kd query']:9.4f} {brute}",
            flush=True,
        )
    crossover = next((row["points"] for row in rows if row["kd query"] < row["grid"]), None)
    if crossover is None:
        print(
            f"crossover: none; the grid is faster than even the kd-tree's bare query at every N up to {rows[-1]['points']}"
        )
    else:
        print(f"crossover: the kd-tree's bare query beats the grid from N = {crossover}")
    plot(rows, args.plot, f"neighbour query, stride {args.stride}, {args.density}")
    print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
