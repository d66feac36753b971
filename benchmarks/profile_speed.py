"""How fast `mobilenet_sep.profile` counts a built model, against TensorFlow's profiler on the same model.

Usage: python benchmarks/profile_speed.py [--model mobilenet_v1_1.0_224] [--repeats 10]
       [--out benchmarks/results/profile_speed.json]

Both sides start from the same built Keras model. Ours reads the Keras graph;
TensorFlow's path traces a tf.function, freezes it to a graph and runs
tf.compat.v1.profiler (`profile.tensorflow_float_ops`). Each side gets one
warm-up run, then both are timed in alternating rounds: medians with their
quartiles, the ratio as the median per-round ratio with its interval, and
whether both count the same conv/dense multiply-adds. Goal (issue 3): ours
<= 50 ms and >= 20x faster.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "profile_speed.json")
FULL_REPEATS = 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v1_1.0_224")
    parser.add_argument("--repeats", type=int, default=FULL_REPEATS, help="alternating rounds")
    parser.add_argument("--out", default=RESULT, help=f"result file (default {os.path.relpath(RESULT)})")
    args = parser.parse_args()

    import tensorflow as tf

    import mobilenet_sep
    from mobilenet_sep.profiler import profile
    from mobilenet_sep.profiler.tf_crosscheck import tensorflow_float_ops
    from mobilenet_sep.speed.measure import time_interleaved
    from mobilenet_sep.speed.stats import Spread, paired_ratio
    from mobilenet_sep.utils.record import result_record, script_command, write_result

    tf.get_logger().setLevel("ERROR")  # the profiler's deprecation warnings
    model = mobilenet_sep.create_model(args.model)
    runs = [lambda: profile(model), lambda: tensorflow_float_ops(model)]
    ours, theirs = time_interleaved(runs, warmup=1, repeats=args.repeats, budget_s=float("inf"))
    ours_ms, theirs_ms, ratio = Spread.of(ours).scaled(1e3), Spread.of(theirs).scaled(1e3), paired_ratio(theirs, ours)

    comparable = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
    tf_flops = sum(flops for op_type, flops in tensorflow_float_ops(model).values() if op_type in comparable)
    our_flops = profile(model).flops
    met = ours_ms.median <= 50 and ratio.low >= 20
    print(f"model                         {args.model}")
    print(f"mobilenet_sep.profile         {ours_ms.median:9.2f} ms  ({ours_ms.p25:.2f}-{ours_ms.p75:.2f})")
    print(f"tf.compat.v1.profiler         {theirs_ms.median:9.2f} ms  ({theirs_ms.p25:.2f}-{theirs_ms.p75:.2f}, freeze + profile)")
    print(f"ratio, {args.repeats} alternating rounds  {ratio.describe(1)}")
    print(f"goal <= 50 ms and >= 20x      {'met' if met else 'NOT met'}")
    print(
        f"conv/dense FLOPs  ours {our_flops:,}  TensorFlow {tf_flops:,}  {'equal' if our_flops == tf_flops else 'DIFFER'}"
    )
    figures = {
        "model": args.model,
        "ours_ms": ours_ms.to_dict(),
        "tensorflow_ms": theirs_ms.to_dict(),
        "ratio": ratio.to_dict(),
        "flops": {"ours": our_flops, "tensorflow": tf_flops, "equal": our_flops == tf_flops},
    }
    short = f"{args.repeats} rounds (a run of record has {FULL_REPEATS})" if args.repeats < FULL_REPEATS else None
    print(f"wrote {write_result(args.out, result_record(figures, command=script_command(), short_run=short))}")


if __name__ == "__main__":
    main()
