"""Why 8.5x fewer mult-adds is not 8.5x faster: MobileNetV1 and its standard-conv twin layer by layer on every
inference runtime, against this machine's measured ceilings (issue 12).

Usage: python benchmarks/per_layer.py [--model mobilenet_v1_1.0_224] [--threads 2] [--repeats 100]
       [--budget 20] [--runtimes tf,onnx,litert,litert-int8] [--out benchmarks/results/per_layer_<model>.json]

Runs `speed.per_layer.per_layer_with_twin` (what `mobilenet-sep compare MODEL --per-layer` calls)
and prints, per runtime: the ceilings, each model's whole-model time against the sum of its
layers (the 15 % rule), depthwise's share of mult-adds and of time, the median achieved GFLOP/s of
the pointwise, depthwise and twin's 3x3 layers, and the three speed-ups (mult-adds, roofline,
measured with its interval); then the tool's own wall time against the issue's goal (1.0_224 in
under 5 minutes on 2 cores, 0.25_128 in under 90 s). Writes the result record (figures, command,
machine, package versions, date) to `--out`, with the CSV and both plots beside it.
"""

import argparse
import os
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
GOALS_S = {"mobilenet_v1_1.0_224": 300.0, "mobilenet_v1_0.25_128": 90.0}
"""Wall-time goals of the whole per-layer comparison (issue 12), on 2 cores."""
FULL_REPEATS = 100
"""Rounds of a run of record, at most: each runtime's rounds also stop at `--budget` seconds (1.0_224: about 15)."""


def _share(value):
    return "-" if value is None else f"{100 * value:.1f} %"


def _rate(value):
    return "-" if value is None else f"{value:.1f}"


def print_summary(result):
    data = result.to_dict()
    print(f"{result.subject}: mult-adds {result.separable.mult_adds:,} vs twin {result.standard.mult_adds:,}")
    for runtime in result.runtimes:
        name = runtime.runtime
        summary, layers = data["summary"][name], data["per_layer"][name]
        ceilings = data["ceilings"].get(name)
        print(f"\n{name}: {data['methods'][name]}")
        if ceilings:
            print(f"  ceilings          {ceilings['gflops']:.1f} {ceilings['unit']}, {ceilings['gbps']:.1f} GB/s")
        for role in ("separable", "standard"):
            model = layers[role]
            verdict = "within 15 %" if model["adds_up"] else "OUTSIDE 15 %"
            print(
                f"  {role:9s} whole {model['whole_model_ms']:9.3f} ms, layers {model['layers_ms']:9.3f} ms "
                f"({model['attribution']:.2f}, {verdict}), roofline {_rate(model['roofline_ms'])} ms, untimed {model['untimed']}"
            )
        rates = summary["median_gflops"]
        print(
            f"  depthwise         {_share(summary['depthwise_mult_adds_share'])} of mult-adds, "
            f"{_share(summary['depthwise_time_share'])} of time"
        )
        print(
            f"  median GFLOP/s    pointwise {_rate(rates['pointwise'])}, depthwise {_rate(rates['depthwise'])}, "
            f"twin 3x3 {_rate(rates['standard_twin'])}"
        )
        speedups = summary["speedups"]
        roofline = speedups["roofline"]
        roofline_text = (
            "-" if roofline is None else f"{roofline['value']:.2f}x ({roofline['low']:.2f}-{roofline['high']:.2f})"
        )
        print(
            f"  speed-up          mult-adds {speedups['mult_adds']:.2f}x, roofline {roofline_text}, "
            f"measured {speedups['measured']['text']}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v1_1.0_224")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=FULL_REPEATS)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of rounds per runtime (default 20)")
    parser.add_argument("--runtimes", default=None, help="comma-separated (default tf,onnx,litert,litert-int8)")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/per_layer_<model>.json)")
    args = parser.parse_args()

    from mobilenet_sep.speed import measure

    measure.set_tensorflow_threads(args.threads)  # before TensorFlow's first op
    from mobilenet_sep.speed import per_layer, per_layer_render
    from mobilenet_sep.speed.runtimes import PER_LAYER_RUNTIMES, check_runtimes
    from mobilenet_sep.utils.record import result_record, write_result

    runtimes = check_runtimes(args.runtimes or PER_LAYER_RUNTIMES)
    out = args.out or os.path.join(RESULTS, f"per_layer_{args.model}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    started = time.perf_counter()
    result = per_layer.per_layer_with_twin(
        args.model,
        runtimes=runtimes,
        threads=args.threads,
        repeats=args.repeats,
        budget_s=args.budget,
        progress=lambda message: print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr),
    )
    wall = time.perf_counter() - started
    print_summary(result)
    goal = GOALS_S.get(args.model)
    verdict = "" if goal is None else f" (goal < {goal:.0f} s: {'met' if wall < goal else 'NOT met'})"
    print(f"\nwall time of the whole per-layer comparison: {wall:.1f} s on {args.threads} threads{verdict}")

    stem = os.path.splitext(out)[0]
    plot = per_layer_render.roofline_plot(result, f"{stem}.png")
    bars = per_layer_render.layers_plot(result, per_layer_render.layers_plot_path(plot))
    table = per_layer_render.write_csv(result, f"{stem}.csv")
    figures = {**result.to_dict(), "tool_wall_seconds": wall, "goal_seconds": goal, "files": [plot, bars, table]}
    short = f"{args.repeats} rounds (a run of record has {FULL_REPEATS})" if args.repeats < FULL_REPEATS else None
    command = shlex.join(["python", "benchmarks/per_layer.py", *sys.argv[1:]])
    write_result(out, result_record(figures, command=command, threads=args.threads, short_run=short))
    print(f"written {out}, {plot}, {bars}, {table}")


if __name__ == "__main__":
    main()
