"""Forward and backward time and peak memory of the pointwise CNN on a batch of 128 clouds x 2048 points.

Usage: python benchmarks/pointcloud_speed.py [--batch 128] [--points 2048] [--repeats 5]

The seed article reports 1.272 s forward and 2.423 s backward (3.695 s in all) for this batch
on a 16-thread Intel i7-6900K; the goal (issue 7) is forward + backward faster than 3.695 s here.
The network is `mobilenet_sep.PointwiseCNN` (40 classes) in training mode on synthetic clouds
(pointcloud_data's ten shapes in turn). Forward: the model's output under tf.function; forward +
backward: cross-entropy and the gradients of every weight; backward is their difference. The
four neighbour queries alone (one per convolution, run in parallel as in the model) are timed
too. Each figure is the median of --repeats runs after a warm-up run.

Peak memory is the process's resident-set high-water mark over all the runs (Linux VmHWM, reset
before them), beside the resident set before the first run (TensorFlow, weights, the batch).
XLA does not apply: the neighbour query is a numba kernel called through tf.numpy_function.
"""

import argparse
import functools
import os
import statistics

from mobilenet_sep.measure import time_runs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SEED_ARTICLE = {"forward": 1.272, "backward": 2.423}
GIB = 2**30


def resident_bytes(field):
    """VmRSS or VmHWM of this process in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def reset_peak():
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current resident set


def median_seconds(function, repeats):
    """Median wall time after one warm-up call, with the package's one timing loop."""
    return statistics.median(time_runs(function, warmup=1, repeats=repeats, budget_s=float("inf")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from mobilenet_sep import pointcloud_grid
    from mobilenet_sep.pointcloud import STRIDES, PointwiseCNN
    from mobilenet_sep.pointcloud_data import SHAPES, synthetic_cloud

    rng = np.random.default_rng(0)
    clouds = np.stack([synthetic_cloud(rng, SHAPES[k % len(SHAPES)], args.points) for k in range(args.batch)])
    clouds = tf.constant(clouds, tf.float32)
    labels = tf.constant(np.arange(args.batch) % 40)
    model = PointwiseCNN(num_points=args.points, classes=40)
    loss = keras.losses.SparseCategoricalCrossentropy()
    voxel_size = model.get_layer("conv1").voxel_size

    @tf.function
    def forward():
        return model(clouds, training=True)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            value = loss(labels, model(clouds, training=True))
        return tape.gradient(value, model.trainable_variables)

    @tf.function
    def queries():
        return [
            tf.numpy_function(
                functools.partial(pointcloud_grid.cell_means_matrix, voxel_size=voxel_size, stride=stride),
                [clouds],
                [tf.int32, tf.float32],
                stateful=False,
            )[1]
            for stride in STRIDES
        ]

    def run(function):
        return lambda: [np.asarray(t) for t in tf.nest.flatten(function())]

    before = resident_bytes("VmRSS")  # TensorFlow, the model's weights and the batch
    reset_peak()
    query_seconds = median_seconds(run(queries), args.repeats)
    forward_seconds = median_seconds(run(forward), args.repeats)
    total_seconds = median_seconds(run(forward_backward), args.repeats)
    peak = resident_bytes("VmHWM")

    goal = sum(SEED_ARTICLE.values())
    print(
        f"pointwise CNN, batch {args.batch} x {args.points} points, {os.cpu_count()} CPU threads, median of {args.repeats}"
    )
    print(f"{'':24}{'ours':>9}{'seed article':>14}")
    print(f"{'neighbour queries (4)':24}{query_seconds:9.3f}{'':>14}")
    print(f"{'forward':24}{forward_seconds:9.3f}{SEED_ARTICLE['forward']:14.3f}")
    print(f"{'backward':24}{total_seconds - forward_seconds:9.3f}{SEED_ARTICLE['backward']:14.3f}")
    print(f"{'forward + backward':24}{total_seconds:9.3f}{goal:14.3f}")
    print(f"goal forward + backward < {goal:.3f} s: {'met' if total_seconds < goal else 'NOT met'}")
    print(
        f"peak resident memory {peak / GIB:.2f} GiB: {before / GIB:.2f} GiB before the first run, "
        f"{(peak - before) / GIB:.2f} GiB more at most while running"
    )


if __name__ == "__main__":
    main()
