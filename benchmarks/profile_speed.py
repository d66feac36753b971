"""How fast `mobilenet_sep.profile` counts a built model, against TensorFlow's profiler on the same model.

Usage: python benchmarks/profile_speed.py [--model mobilenet_v1_1.0_224] [--repeats 50] [--tf-repeats 5]

Both sides start from the same built Keras model. Ours reads the Keras graph;
TensorFlow's path traces a tf.function, freezes it to a graph and runs
tf.compat.v1.profiler (`profile.tensorflow_float_ops`). Each side gets one
warm-up run, then the median of its repeats is reported, with the ratio and
whether both count the same conv/dense multiply-adds. Goal (issue 3): ours
<= 50 ms and >= 20x faster.
"""

import argparse
import os
import statistics

from mobilenet_sep.measure import time_runs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def median_seconds(function, repeats):
    """Median wall time after one warm-up call, with the package's one timing loop."""
    return statistics.median(time_runs(function, warmup=1, repeats=repeats, budget_s=float("inf")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v1_1.0_224")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--tf-repeats", type=int, default=5)
    args = parser.parse_args()

    import tensorflow as tf

    import mobilenet_sep
    from mobilenet_sep.profiler import profile
    from mobilenet_sep.profiler_crosscheck import tensorflow_float_ops

    tf.get_logger().setLevel("ERROR")  # the profiler's deprecation warnings
    model = mobilenet_sep.create_model(args.model)
    ours = median_seconds(lambda: profile(model), args.repeats)
    theirs = median_seconds(lambda: tensorflow_float_ops(model), args.tf_repeats)

    comparable = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
    tf_flops = sum(flops for op_type, flops in tensorflow_float_ops(model).values() if op_type in comparable)
    our_flops = profile(model).flops
    print(f"model                         {args.model}")
    print(f"mobilenet_sep.profile         {ours * 1e3:9.2f} ms  (median of {args.repeats})")
    print(f"tf.compat.v1.profiler         {theirs * 1e3:9.2f} ms  (freeze + profile, median of {args.tf_repeats})")
    print(f"ratio                         {theirs / ours:9.1f} x")
    print(f"goal <= 50 ms and >= 20x      {'met' if ours <= 0.05 and theirs / ours >= 20 else 'NOT met'}")
    print(
        f"conv/dense FLOPs  ours {our_flops:,}  TensorFlow {tf_flops:,}  {'equal' if our_flops == tf_flops else 'DIFFER'}"
    )


if __name__ == "__main__":
    main()
