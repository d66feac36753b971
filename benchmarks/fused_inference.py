"""TF inference of MobileNetV1 with BatchNorm folded (`mobilenet_sep.fuse`) vs ours unfused vs keras.applications.

Usage: python benchmarks/fused_inference.py [--alpha 1.0] [--size 224] [--batch-sizes 32,1] [--threads 2]
       [--seconds 60] [--out benchmarks/results/fused_inference.json] [--quick]

The three models compute the same function: keras.applications.MobileNet (weights=None) gets
random weights and random BatchNorm statistics, ours takes them layer by layer, and the fused
model is `fuse(ours)`. At each batch size the three are timed in alternating rounds
(measure.measure_interleaved: fused, ours, keras.applications, fused, ...) for about
`--seconds` seconds in all; the figures are medians with their quartiles and speed-ups as the
median per-round ratio with a 95 % interval (stats.paired_ratio). Then the exported files: the
ONNX file converted from the unfused graph (as before `fuse`) against the fused one, and TFLite
from ours against TFLite from the fused model, op lists compared and timed at batch 1 the same way.
Goals (issue 13), on 2 threads: fused >= 1.5x keras.applications and >= 1.5x ours at batch 32,
>= 1.3x keras.applications at batch 1; exports no slower, same TFLite ops.
`--quick` proves the script runs (alpha 0.25 at 128x128, about 2 s per measurement).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from export_vs_keras_applications import twin_models  # noqa: E402  (also puts tests/ on the path)

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fused_inference.json")
GOALS = {("fused", "keras.applications", 32): 1.5, ("fused", "ours", 32): 1.5, ("fused", "keras.applications", 1): 1.3}
"""(faster, slower, batch size) -> the speed-up the issue asks for."""

MAX_ROUNDS = 1000


def speedup(seconds, faster, slower, goal=None):
    """`slower`'s time over `faster`'s, round by round, with its interval and the goal when there is one."""
    from mobilenet_sep.speed.stats import paired_ratio

    ratio = paired_ratio(seconds[slower], seconds[faster])
    figures = {"faster": faster, "slower": slower, **ratio.to_dict()}
    if goal is not None:
        figures.update(goal=goal, met=ratio.value >= goal, met_at_interval_low=ratio.low >= goal)
    return figures


def spreads_ms(seconds, batch_size):
    """{subject: median and quartiles in ms, images per second at the median}."""
    from mobilenet_sep.speed.stats import Spread

    figures = {}
    for subject, runs in seconds.items():
        spread = Spread.of(runs).scaled(1e3)
        figures[subject] = {**spread.to_dict(), "images_per_second": 1e3 * batch_size / spread.median}
    return figures


def time_tensorflow(models, batch_size, threads, seconds):
    """{subject: run times (s)}: TF inference (the "tf" runtime) of every model, in alternating rounds."""
    from mobilenet_sep.speed.measure import measure_interleaved

    timings = measure_interleaved(
        list(models.values()), "tf", batch_size=batch_size, threads=threads, repeats=MAX_ROUNDS, budget_s=seconds
    )
    return {subject: timing.seconds for subject, timing in zip(models, timings, strict=True)}


def time_files(runners, images, seconds):
    """{subject: run times (s)} of exported-file runners on the same images, in alternating rounds."""
    from mobilenet_sep.speed.measure import time_interleaved

    runs = [lambda runner=runner: runner(images) for runner in runners.values()]
    times = time_interleaved(runs, warmup=10, repeats=MAX_ROUNDS, budget_s=seconds)
    return dict(zip(runners, times, strict=True))


def compare_exports(model, fused, threads, seconds):
    """ONNX (unfused graph vs fused) and TFLite (ours vs fused): op counts, parity and batch-1 latency."""
    from mobilenet_sep.export.to_onnx import OnnxRunner, convert_to_onnx, onnx_op_counts
    from mobilenet_sep.export.to_tflite import LiteRTRunner, check_tflite_graph, convert_to_tflite, tflite_ops
    from mobilenet_sep.export.verify import random_inputs, relative_error

    images = random_inputs(model, count=1)
    expected = model(images, training=False)
    onnx = {"unfused graph": convert_to_onnx(model, fused=False), "fused": convert_to_onnx(model)}
    tflite = {"ours": convert_to_tflite(model), "fused": convert_to_tflite(fused)}
    sections = {}
    for runtime, files, make_runner, ops in (
        ("onnx", onnx, OnnxRunner, onnx_op_counts),
        ("litert", tflite, LiteRTRunner, lambda content: [op.label for op in tflite_ops(content)]),
    ):
        runners = {subject: make_runner(content, threads) for subject, content in files.items()}
        times = time_files(runners, images, seconds)
        (before, after) = files
        sections[runtime] = {
            "ops": {subject: ops(content) for subject, content in files.items()},
            "relative_error": {subject: relative_error(run(images), expected) for subject, run in runners.items()},
            "latency_ms": spreads_ms(times, 1),
            "speedup": speedup(times, after, before),
        }
    sections["litert"]["same_ops"] = len(set(map(tuple, sections["litert"]["ops"].values()))) == 1
    sections["litert"]["fused_graph_problems"] = check_tflite_graph(tflite_ops(tflite["fused"]), fused, "none")
    return sections


def print_section(title, latency, ratios):
    print(f"\n{title}")
    for subject, figures in latency.items():
        print(
            f"  {subject:20s} {figures['median']:9.2f} ms ({figures['p25']:.2f}-{figures['p75']:.2f}), "
            f"{figures['images_per_second']:8.1f} img/s, {figures['count']} rounds"
        )
    for ratio in ratios:
        goal = f"  goal >= {ratio['goal']}: {'met' if ratio['met'] else 'NOT met'}" if "goal" in ratio else ""
        print(f"  {ratio['faster']} over {ratio['slower']}: {ratio['text']}{goal}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-sizes", default="32,1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0, help="time per measurement, all subjects together")
    parser.add_argument("--out", default=RESULT)
    parser.add_argument("--quick", action="store_true", help="alpha 0.25, 128x128, 2 s per measurement")
    args = parser.parse_args()
    if args.quick:
        args.alpha, args.size, args.seconds = 0.25, 128, 2.0
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]

    from mobilenet_sep.speed.measure import set_tensorflow_threads

    set_tensorflow_threads(args.threads)  # before any model runs: TensorFlow fixes its pools then
    import mobilenet_sep
    from mobilenet_sep.export.verify import random_inputs, relative_error
    from mobilenet_sep.utils.record import result_record, write_result

    models, difference = twin_models(args.alpha, args.size)
    fused = mobilenet_sep.fuse(models["ours"])
    models = {"fused": fused, **models}
    images = random_inputs(fused, count=4)
    fused_error = relative_error(fused(images), models["ours"](images, training=False))
    name = models["ours"].name
    print(f"{name}; ours vs keras.applications outputs {difference:.2e}, fused vs ours {fused_error:.2e}")
    print(f"fused: {len(fused.fusion['folded'])} BatchNorm folded, 'same' padding at {fused.fusion['same_padding']}")

    figures = {
        "model": name,
        "threads": args.threads,
        "parity": {"ours_vs_keras_applications": difference, "fused_vs_ours": fused_error},
        "fusion": fused.fusion,
        "tensorflow": [],
    }
    for batch_size in batch_sizes:
        seconds = time_tensorflow(models, batch_size, args.threads, args.seconds)
        pairs = [("fused", "keras.applications"), ("fused", "ours"), ("ours", "keras.applications")]
        ratios = [speedup(seconds, *pair, GOALS.get((*pair, batch_size))) for pair in pairs]
        latency = spreads_ms(seconds, batch_size)
        figures["tensorflow"].append({"batch_size": batch_size, "latency_ms": latency, "speedups": ratios})
        print_section(f"TF inference, batch {batch_size}, {args.threads} threads (median, p25-p75)", latency, ratios)

    figures["exports"] = compare_exports(models["ours"], fused, args.threads, args.seconds / 2)
    for runtime, section in figures["exports"].items():
        print_section(f"{runtime} at batch 1, {args.threads} threads", section["latency_ms"], [section["speedup"]])
        for subject, ops in section["ops"].items():
            counted = ops if isinstance(ops, dict) else f"{len(ops)} ops"
            print(f"  {subject:20s} {counted}; relative error {section['relative_error'][subject]:.2e}")
    litert = figures["exports"]["litert"]
    print(f"  TFLite op sequences identical: {litert['same_ops']}; fused graph check: {litert['fused_graph_problems']}")

    command = " ".join(["python benchmarks/fused_inference.py", *sys.argv[1:]])
    short = "--quick: alpha 0.25 at 128x128, 2 s per measurement" if args.quick else None
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    record = result_record(figures, command=command, threads=args.threads, short_run=short)
    print(f"\nwrote {write_result(args.out, record)}")


if __name__ == "__main__":
    main()
