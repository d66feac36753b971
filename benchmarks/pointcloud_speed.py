"""Forward, forward + backward time and peak memory of the pointwise CNN on the paper's batch (128 x 2048 points).

Usage: python benchmarks/pointcloud_speed.py [--batch 128] [--points 2048] [--repeats 5]
       [--queries numba,grid] [--no-xla] [--out benchmarks/results/pointcloud_speed.json]

The network is `mobilenet_sep.PointwiseCNN` (40 classes) on synthetic clouds (the ten shapes of
`data.pointclouds` in turn), once per neighbour query (`--queries`: the numba kernel, the grid in
tensor ops; the grid's functions are compiled with XLA unless --no-xla). Timed directly, each as
its own tf.function:

- forward: the model's output in inference mode (no dropout);
- forward + backward: cross-entropy in training mode and the gradients of every weight;
- backward, for the table only: the median of the per-round differences of those two;
- the neighbour queries alone: the numba calls (four layers, each batch half on its own, as the
  layer makes them), or the grid's four cell-mean computations
  (query and means: the grid computes both in one pass), and their share of the forward pass.

All subjects are timed in alternating rounds (measure.time_interleaved: A B C ... A B C), one
warm-up each, and reported as medians with quartiles (stats.Spread); a goal counts as met when the
95 % interval of the median lies below it. Peak memory is each query's resident-set high-water mark
(Linux VmHWM) over one forward and one forward + backward, measured in a fresh process so that one
query's memory does not count against the other.

The goals (issue 15) compare with the seed article's figures: 1.272 s forward, 2.423 s backward
(3.695 s in all) for this batch, on a 16-thread Intel i7-6900K: the seed article's run, not ours.
"Before" is issue 15's rerun of the numba-only layer on this 2-core machine (forward in training
mode): query 1.09 s, forward 1.705 s, backward 0.537 s, peak 2.73 GiB.
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "pointcloud_speed.json")
SEED_ARTICLE = {"forward": 1.272, "backward": 2.423, "forward_backward": 3.695, "machine": "Intel i7-6900K, 16 threads"}
BEFORE = {"query": 1.09, "forward": 1.705, "backward": 0.537, "forward_backward": 2.242, "peak_gib": 2.73}
GIB = 2**30


def resident_bytes(field):
    """VmRSS or VmHWM of this process in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def batch_of_clouds(batch, points):
    import numpy as np

    from mobilenet_sep.data.pointclouds import SHAPES, synthetic_cloud

    rng = np.random.default_rng(0)
    clouds = np.stack([synthetic_cloud(rng, SHAPES[k % len(SHAPES)], points) for k in range(batch)])
    return clouds.astype("float32"), np.arange(batch) % 40


def subjects(query, clouds, labels, xla):
    """{name: zero-argument function} timed for one query: forward, forward + backward, the queries alone."""
    import keras
    import numpy as np
    import tensorflow as tf

    from mobilenet_sep.layers import grid_means, neighbour_grid
    from mobilenet_sep.layers.pointcloud import batch_halves
    from mobilenet_sep.zoo.pointwise_cnn import STRIDES, PointwiseCNN

    jit = xla and query == "grid"
    model = PointwiseCNN(input_shape=clouds.shape[1:], classes=40, query=query)
    loss = keras.losses.SparseCategoricalCrossentropy()
    clouds, labels = tf.constant(clouds), tf.constant(labels)
    voxel_size = model.get_layer("conv1").voxel_size
    features = [tf.constant(np.random.default_rng(1).normal(size=(*clouds.shape[:2], c)), tf.float32) for c in (3, 9)]

    @tf.function(jit_compile=jit)
    def forward():
        return model(clouds, training=False)

    @tf.function(jit_compile=jit)
    def forward_backward():
        with tf.GradientTape() as tape:
            value = loss(labels, model(clouds, training=True))
        return tape.gradient(value, model.trainable_variables)

    @tf.function(jit_compile=jit)
    def queries():
        if query == "numba":  # the numba calls, run side by side as in the model: one per layer and half batch
            return [
                tf.numpy_function(
                    lambda points, stride=stride: neighbour_grid.cell_means_matrix(points, voxel_size, stride),
                    [part],
                    [tf.int32, tf.float32],
                    stateful=False,
                )[1]
                for stride in STRIDES
                for part in batch_halves(clouds)
            ]
        return [grid_means.cell_means(clouds, features[k > 0], voxel_size, s) for k, s in enumerate(STRIDES)]

    def run(function):
        return lambda: [np.asarray(t) for t in tf.nest.flatten(function())]

    return {"forward": run(forward), "forward_backward": run(forward_backward), "queries": run(queries)}


def peak_memory(query, batch, points, xla):
    """This process's peak resident memory over one forward and one forward + backward (call it in a fresh process)."""
    clouds, labels = batch_of_clouds(batch, points)
    runs = subjects(query, clouds, labels, xla)
    before = resident_bytes("VmRSS")  # TensorFlow, the model's weights and the batch
    runs["forward"]()
    runs["forward_backward"]()
    return {"peak_gib": resident_bytes("VmHWM") / GIB, "before_first_run_gib": before / GIB}


def peak_in_fresh_process(query, args):
    command = [sys.executable, __file__, "--peak-of", query, "--batch", str(args.batch), "--points", str(args.points)]
    output = subprocess.run(command + (["--no-xla"] if args.no_xla else []), check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def seconds_table(name, spread, before=None, seed=None):
    """One row: our median (quartiles), then issue 15's figure before this change and the seed article's."""
    row = f"{name:28}{spread.median:8.3f} ({spread.p25:.3f}-{spread.p75:.3f})"
    row += f"{before:10.3f}" if before is not None else f"{'':10}"
    return row + (f"{seed:14.3f}" if seed is not None else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds")
    parser.add_argument("--queries", default="numba,grid", help="comma-separated: numba, grid")
    parser.add_argument("--no-xla", action="store_true", help="run the grid's functions without XLA")
    parser.add_argument("--out", default=RESULT, help=f"result file (default {os.path.relpath(RESULT)})")
    parser.add_argument("--peak-of", help=argparse.SUPPRESS)  # internal: measure one query's peak memory
    args = parser.parse_args()
    if args.peak_of:
        print(json.dumps(peak_memory(args.peak_of, args.batch, args.points, not args.no_xla)))
        return

    import numpy as np

    from mobilenet_sep.speed.measure import available_threads, time_interleaved
    from mobilenet_sep.speed.stats import Spread, median_interval, paired_ratio
    from mobilenet_sep.utils.record import result_record, script_command, write_result

    queries = [query.strip() for query in args.queries.split(",") if query.strip()]
    memory = {query: peak_in_fresh_process(query, args) for query in queries}
    clouds, labels = batch_of_clouds(args.batch, args.points)
    runs = {query: subjects(query, clouds, labels, not args.no_xla) for query in queries}
    names = [(query, part) for query in queries for part in ("queries", "forward", "forward_backward")]
    timed = time_interleaved([runs[q][p] for q, p in names], warmup=1, repeats=args.repeats, budget_s=float("inf"))
    seconds = dict(zip(names, timed, strict=True))

    print(
        f"pointwise CNN, batch {args.batch} x {args.points} points, {available_threads()} CPU threads, "
        f"{args.repeats} alternating rounds: median (quartiles) in seconds"
    )
    paper_batch = (args.batch, args.points) == (128, 2048)
    print(f"{'':28}{'ours':>8}{'(quartiles)':>15}{'before':>10}{'seed article':>14}", end="")
    print(f"  (the seed article's run: {SEED_ARTICLE['machine']})")
    figures = {"batch": args.batch, "points": args.points, "xla_for_grid": not args.no_xla, "queries": {}}
    goal_forward, goal_total = SEED_ARTICLE["forward"], SEED_ARTICLE["forward_backward"]
    for query in queries:
        forward, total = seconds[query, "forward"], seconds[query, "forward_backward"]
        backward = [b - f for f, b in zip(forward, total, strict=True)]
        spreads = {part: Spread.of(seconds[query, part]) for part in ("queries", "forward", "forward_backward")}
        spreads["backward"] = Spread.of(backward)
        share = [q / f for q, f in zip(seconds[query, "queries"], forward, strict=True)]
        met = {
            "forward": median_interval(forward)[1] < goal_forward,
            "forward_backward": median_interval(total)[1] < goal_total,
        }
        before = BEFORE if query == "numba" and paper_batch else {}  # issue 15's figures are for the paper's batch
        seed = SEED_ARTICLE if paper_batch else {}
        label = "queries (4 x 2 halves)" if query == "numba" else "queries + cell means (4)"
        print(f"{query} query" + ("" if query == "numba" or args.no_xla else " (XLA)"))
        row = seconds_table
        print(row(f"  {label}", spreads["queries"], before.get("query")))
        print(row("  forward (inference)", spreads["forward"], before.get("forward"), seed.get("forward")))
        print(row("  backward (fwd+bwd - fwd)", spreads["backward"], before.get("backward"), seed.get("backward")))
        before_total = before.get("forward_backward")
        print(row("  forward + backward", spreads["forward_backward"], before_total, seed.get("forward_backward")))
        before_share = f" (before: {BEFORE['query'] / BEFORE['forward']:.0%})" if before else ""
        print(f"  query share of the forward pass: {np.median(share):.0%}{before_share}")
        if paper_batch:
            print(
                f"  goals: forward < {goal_forward} s {'met' if met['forward'] else 'NOT met'}, forward + backward "
                f"< {goal_total} s {'met' if met['forward_backward'] else 'NOT met'} (95 % interval of the median)"
            )
        peak = memory[query]
        print(
            f"  peak resident memory {peak['peak_gib']:.2f} GiB "
            f"({peak['before_first_run_gib']:.2f} GiB before the first run)"
            + (f", before: {BEFORE['peak_gib']} GiB" if before else "")
        )
        figures["queries"][query] = {
            **{f"{part}_s": spread.to_dict() for part, spread in spreads.items()},
            "query_share_of_forward": float(np.median(share)),
            "goals_met": met if paper_batch else None,
            "memory": peak,
        }
    if {"numba", "grid"} <= set(queries):
        for part in ("forward", "forward_backward"):
            ratio = paired_ratio(seconds["grid", part], seconds["numba", part])
            figures[f"grid_over_numba_{part}"] = ratio.to_dict()
            print(f"grid / numba, {part.replace('_', ' + ')}: {ratio.describe()}")
    figures["seed_article"], figures["before"] = SEED_ARTICLE, BEFORE
    short = None if paper_batch else f"batch {args.batch} x {args.points} points"
    record = result_record(figures, command=script_command(), threads=available_threads(), short_run=short)
    print(f"result written to {write_result(args.out, record)}")


if __name__ == "__main__":
    main()
