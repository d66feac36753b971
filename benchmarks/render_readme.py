"""Render every figure of README.md, training/README.md and export/README.md from the stored results.

Usage: python benchmarks/render_readme.py [--check]

A figure block in a document is the text between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->`
(each marker on its own line). Its content is what the function registered as NAME renders from
the result files it names (`benchmarks/results/*.json`, written by the benchmark scripts, the demo
and `compare` with `--record`), ending with a line that says which command measured it, on which
machine and when. Rendering rewrites the blocks in place; `--check` writes nothing and exits 1 when
a block differs from what its results render (tests/test_readme_figures.py runs the same check),
so no figure can be typed by hand or drift from its measurement.

A block for a new result file is one function here:

    @block("NAME", "new_result.json")
    def render_new(new):             # one argument per result file: its stored record
        return f"... {new['figures']['speedup']['text']} ..." + measured_by(new)

and the two markers where its text goes.
"""

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path("benchmarks") / "results"
DOCUMENTS = ("README.md", "training/README.md", "export/README.md")
BLOCK = re.compile(r"^<!-- figures:(?P<name>[\w.-]+) -->\n(?P<body>.*?)^<!-- /figures:(?P=name) -->$", re.S | re.M)
BLOCKS = {}
"""Block name -> (render function, the result files it reads)."""


def block(name, *results):
    """Decorator: the function renders block `name` from `results` (file names under benchmarks/results/)."""

    def register(function):
        BLOCKS[name] = (function, results)
        return function

    return register


def measured_by(*records):
    """The line that ends a block: each result's command, machine, date, and whether it was a short run."""
    lines = []
    for record in records:
        machine = record["machine"]
        threads = f", {machine['threads']} threads" if machine.get("threads") else ""
        if machine.get("load_average_1min") is not None:  # near 0 on a quiet machine
            threads += f", load {machine['load_average_1min']:.1f}"
        short = f", a short run: {record['short_run']}" if record.get("short_run") else ""
        lines.append(
            f"`{record['command']}` on {machine['cpu']} ({machine['cores']} cores{threads}), "
            f"{record['date'][:10]}{short}"
        )
    return "\n_From " + "; ".join(lines) + "._\n"


def prose(text):
    """A paragraph wrapped as README's hand-written ones are (tables are left alone)."""
    return textwrap.fill(text, width=100, break_long_words=False, break_on_hyphens=False) + "\n"


def ratio_text(ratio, digits=2):
    """ "387x faster (95 % interval 314-729)", or "no measurable difference (0.99-1.02)"."""
    if not ratio["measurable"]:
        return ratio["text"]
    return f"{ratio['value']:.{digits}f}x (95 % interval {ratio['low']:.{digits}f}-{ratio['high']:.{digits}f})"


def percent(share, digits=2):
    return f"{100 * share:.{digits}f} %"


def spread_ms(spread, digits=2):
    """ "4.70 ms (4.61-4.82)": a median with its quartiles."""
    return f"{spread['median']:.{digits}f} ms ({spread['p25']:.{digits}f}-{spread['p75']:.{digits}f})"


def _runtimes(comparison):
    return {row["runtime"]: row for row in comparison["runtimes"]}


# --- README.md ---------------------------------------------------------------------------------


@block("demo", "demo.json")
def render_demo(demo):
    """The demo's closing table: accuracy, cost, predicted and measured speed-up, files, wall time."""
    figures = demo["figures"]
    exports = {item["file"]: item for item in figures["exports"]}
    comparison = figures["comparison"]
    onnx, fp32, int8 = (exports[name]["verification"] for name in ("model.onnx", "model.tflite", "model_int8.tflite"))
    runtimes = _runtimes(comparison)
    measured = " / ".join(runtimes[name]["measured_speedup"]["text"] for name in ("tf", "tf-train", "onnx", "litert"))
    sizes = ", ".join(f"{exports[name]['bytes'] / 1e6:.2f} MB" for name in exports)
    latencies = ", ".join(f"{exports[name]['timing']['median_ms']:.2f}" for name in exports)
    rows = [
        ("accuracy", f"Keras top-1 on the {int8['evaluation_examples']} test digits", percent(figures["keras_top1"])),
        (
            "accuracy",
            "model.onnx / model.tflite top-1",
            f"{percent(onnx['exported_top1'])} / {percent(fp32['exported_top1'])} "
            f"({percent(min(onnx['top1_agreement'], fp32['top1_agreement']), 0)} agreement)",
        ),
        (
            "accuracy",
            "model_int8.tflite top-1",
            f"{percent(int8['exported_top1'])} ({int8['top1_delta']:+.2f} points, {percent(int8['top1_agreement'], 1)} agreement)",
        ),
        (
            "cost",
            "mult-adds, separable / fair twin",
            f"{comparison['separable']['mult_adds']:,} / {comparison['standard']['mult_adds']:,}",
        ),
        ("cost", "parameters, separable / fair twin", f"{comparison['separable']['params']:,} / {comparison['standard']['params']:,}"),
        ("speed-up", "predicted (mult-adds)", f"{comparison['predicted_speedup']:.2f}x"),
        ("speed-up", "measured: TF inference / TF training step / ONNX Runtime / LiteRT", measured),
        ("files", ", ".join(exports), f"{sizes}; {latencies} ms per image"),
        ("run", "wall time", f"{figures['wall_seconds']:.0f} s"),
    ]
    table = "\n".join(["| | what | value |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)])
    threads = runtimes["tf"]["threads"]
    note = prose(
        f"Measured speed-ups are the fair twin's time over the model's, timed in alternating rounds at batch 1 "
        f"on {threads} threads: the median per-round ratio and its 95 % interval. The demo prints each row with "
        "its timings (median and quartiles), batch and threads."
    )
    return f"{table}\n\n{note}" + measured_by(demo)


@block("zoo", "zoo_counts.json")
def render_zoo(counts):
    params = counts["figures"]["mobilenet_v1_1.0_224"]["params"]
    text = (
        f"`MobileNetV1()` has {params:,} parameters, as keras.applications' MobileNet, at every width and "
        "resolution; `weights=\"imagenet\"` downloads keras.applications' file when online, and a local copy "
        'is passed as `weights="path/to/mobilenet_1_0_224_tf.h5"`.'
    )
    return prose(text) + measured_by(counts)


@block("count", "zoo_counts.json", "profile_speed.json")
def render_count(counts, speed):
    figures = counts["figures"]
    model, twin = figures["mobilenet_v1_1.0_224"], figures["conv_mobilenet_v1_1.0_224"]
    kinds = model["by_kind"]

    def share(kind):
        return f"{kinds[kind]['mult_adds_percent']:.2f} % / {kinds[kind]['kernel_weights_percent']:.2f} %"

    first = kinds["standard"]
    convolutions = twin["by_kind"]["standard"]["mult_adds"]
    timing = speed["figures"]
    text = (
        "Every layer with its kind, shapes, kernel, stride, dilation, multiply-adds (pointwise M·Dp²·N, "
        "depthwise Dk²·M·Dp², standard Dk²·M·N·Dp², dense M·N) and parameters, as a table, `--json`, "
        f"`--csv` or a PNG. It reads any built Keras model (keras.applications' too) in "
        f"{spread_ms(timing['ours_ms'])}, where TensorFlow's own profiler takes {spread_ms(timing['tensorflow_ms'], 0)}: "
        f"{ratio_text(timing['ratio'], 0)} faster. `mobilenet_v1_1.0_224` counts {model['mult_adds']:,} mult-adds, "
        f"the published 569 M; by kind, 1x1 convolutions take {share('pointwise')} of the mult-adds / weights, "
        f"depthwise {share('depthwise')}, the classifier {share('dense')}: paper Table 2. Two printed figures "
        "disagree with the exact count and the profiler says so rather than bend it: Table 2's 1.19 % for the "
        f"first 3x3 convolution is {first['mult_adds_percent']:.2f} % (digits swapped: {first['mult_adds']:,} of "
        f"{model['mult_adds']:,}), and Table 4's 4866 M for the twin is {twin['mult_adds'] / 1e6:,.2f} M (its "
        f"convolutions alone make {convolutions / 1e6:,.2f} M). TF-slim's table prints the 0.75 models 2.6 % low "
        f"(317 M at 224; exact {figures['mobilenet_v1_0.75_224']['mult_adds'] / 1e6:.2f} M, the paper's 325)."
    )
    return prose(text) + measured_by(counts, speed)


@block("compare", "compare_mobilenet_v1_1.0_224.json", "zoo_counts.json")
def render_compare(compare, counts):
    figures = compare["figures"]
    runtimes = _runtimes(figures)
    first = next(iter(runtimes.values()))
    names = {
        "tf": "TensorFlow inference",
        "tf-train": "TensorFlow training step",
        "onnx": "ONNX Runtime fp32",
        "litert": "LiteRT fp32",
        "litert-int8": "LiteRT int8",
        "tf-fused": "TensorFlow inference, BatchNorm folded",
    }
    rows = [
        f"| {names.get(name, name)} | {spread_ms(row['separable_ms'])} | {spread_ms(row['standard_ms'])} | "
        f"{row['measured_speedup']['text']} | {figures['predicted_speedup']:.2f}x |"
        for name, row in runtimes.items()
    ]
    layer = counts["figures"]["layer"]
    before = prose(
        f"The twin needs {figures['predicted_speedup']:.2f}x the multiply-adds of MobileNet, but the time saved is "
        "another matter: each runtime's kernels decide the speed, so `compare` shows both, on your machine: "
        "each model's median time with its quartiles, and the measured speed-up as the median of the per-round "
        "ratios of alternating rounds with its 95 % interval (\"no measurable difference\" where it holds 1.0)."
    )
    table = (
        f"| `{figures['subject']}` vs its twin, batch {first['batch_size']}, {first['threads']} threads, "
        f"{first['rounds']} rounds | MobileNet | twin | measured | predicted |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )
    after = prose(
        f"For one layer, `--layer {layer['layer']}` counts {layer['standard_mult_adds']:,} mult-adds for the "
        f"standard convolution and {layer['depthwise_mult_adds']:,} + {layer['pointwise_mult_adds']:,} = "
        f"{layer['separable_mult_adds']:,} for the separable one: 1/N + 1/Dk² = 1/256 + 1/25, a "
        f"{layer['saving']:.1f}x saving that a layer this small never shows in time (calls cost more than "
        "arithmetic)."
    )
    return f"{before}\n{table}\n\n{after}" + measured_by(compare, counts)


@block("per-layer", "per_layer_mobilenet_v1_1.0_224.json")
def render_per_layer(per_layer):
    """Per runtime: the measured ceilings, where the time goes by kind, and the three speed-ups."""
    figures = per_layer["figures"]
    names = {"tf": "TensorFlow", "onnx": "ONNX Runtime", "litert": "LiteRT fp32", "litert-int8": "LiteRT int8"}
    rows, apart = [], []
    for runtime, summary in figures["summary"].items():
        ceilings, gflops, speedups = summary["ceilings"], summary["median_gflops"], summary["speedups"]
        roofline = speedups["roofline"]
        sums = []
        for role in ("separable", "standard"):
            times = figures["per_layer"][runtime][role]
            sums.append(f"{times['layers_ms']:.2f} / {times['whole_model_ms']:.2f}")
            if not times["adds_up"]:
                apart.append(f"{names.get(runtime, runtime)} ({role}: {times['attribution']:.2f})")
        rows.append(
            f"| {names.get(runtime, runtime)} | {ceilings['gflops']:.0f} / {ceilings['gbps']:.1f} | "
            f"{percent(summary['depthwise_mult_adds_share'], 1)} / {percent(summary['depthwise_time_share'], 1)} | "
            f"{gflops['pointwise']:.0f} / {gflops['depthwise']:.1f} / {gflops['standard_twin']:.0f} | "
            f"{speedups['mult_adds']:.2f}x / {roofline['value']:.2f}x ({roofline['low']:.2f}-{roofline['high']:.2f}) | "
            f"{speedups['measured']['text']} | {sums[0]}; {sums[1]} |"
        )
    tolerance = next(iter(next(iter(figures["per_layer"].values())).values()))["tolerance"]
    table = (
        f"| `{figures['subject']}`, batch {figures['batch_size']}, {figures['threads']} threads | ceilings GFLOP/s / GB/s "
        "| depthwise: share of mult-adds / of time | median GFLOP/s: pointwise / depthwise / twin's 3x3 | "
        "predicted speed-up: mult-adds / roofline | measured | layers' sum / whole, ms: MobileNet; twin |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    after = (
        "Depthwise layers do a few per cent of the arithmetic at a small fraction of the machine's rate: they "
        "read and write as many bytes as a 1x1 convolution for a fraction of its mult-adds, so memory, not "
        "arithmetic, bounds them, and the roofline prediction (each layer at max(flops / peak, bytes / "
        "bandwidth)) falls short of the mult-add one. Ceilings are the best of a few large convolutions "
        "(GFLOP/s, a mult-add counted as 2) and of large memory-bound ops (GB/s), timed on each runtime. "
        "TensorFlow's layers are timed by its profiler; on ONNX Runtime and LiteRT the timed file is cut after "
        "each layer and every cut is timed in the same rounds, a layer's time being what its cut adds to the one "
        "before. "
        f"Per-layer times add up to the whole-model time within {percent(tolerance, 0)} "
    )
    after += f"except on {', '.join(apart)}: the sum over the whole." if apart else "on every runtime."
    return f"{table}\n\n{prose(after)}" + measured_by(per_layer)


@block("fused", "fused_inference.json")
def render_fused(fused):
    """TF inference of the BatchNorm-folded model against ours and keras.applications', and its exports."""
    figures = fused["figures"]
    rows = []
    for timing in figures["tensorflow"]:
        latency = timing["latency_ms"]
        by_pair = {(item["faster"], item["slower"]): item for item in timing["speedups"]}
        rows.append(
            f"| {timing['batch_size']} | {spread_ms(latency['fused'])} | {spread_ms(latency['ours'])} | "
            f"{spread_ms(latency['keras.applications'])} | {by_pair['fused', 'keras.applications']['text']} | "
            f"{by_pair['fused', 'ours']['text']} |"
        )
    table = (
        f"| `{figures['model']}`, TF inference, {figures['threads']} threads: batch | fused | ours | keras.applications "
        "| fused over keras.applications | fused over ours |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    exports = figures["exports"]
    after = prose(
        f"The fused model computes ours within {figures['parity']['fused_vs_ours']:.1e} relative error. Exported "
        f"(batch 1), the fused model over ours: ONNX Runtime {exports['onnx']['speedup']['text']}, LiteRT "
        f"{exports['litert']['speedup']['text']}, "
        + ("with the same TFLite ops." if exports["litert"]["same_ops"] else "with other TFLite ops.")
    )
    return f"{table}\n\n{after}" + measured_by(fused)


@block("pointcloud", "pointcloud_speed.json")
def render_pointcloud(speed):
    """The pointwise CNN on one batch, per neighbour query, beside the seed article's run."""
    figures = speed["figures"]

    def seconds(spread):
        return f"{spread['median']:.3f} s ({spread['p25']:.3f}-{spread['p75']:.3f})"

    rows = [
        f"| `query=\"{name}\"` | {seconds(query['forward_s'])} | {seconds(query['backward_s'])} | "
        f"{seconds(query['forward_backward_s'])} | {percent(query['query_share_of_forward'], 0)} | "
        f"{query['memory']['peak_gib']:.2f} GiB |"
        for name, query in figures["queries"].items()
    ]
    seed = figures["seed_article"]
    rows.append(
        f"| seed article, its batch of 128 x 2,048 ({seed['machine']}) | {seed['forward']:.3f} s | {seed['backward']:.3f} s | "
        f"{seed['forward_backward']:.3f} s | | |"
    )
    table = (
        f"| {figures['batch']} clouds x {figures['points']:,} points | forward | backward | forward + backward | "
        "neighbour query's share of forward | peak memory |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    after = prose(
        "Medians with quartiles, each query timed in alternating rounds; forward in inference mode, backward "
        "the per-round difference of forward + backward and forward. The grid query "
        f"(tensor ops) is {ratio_text(figures['grid_over_numba_forward'])} slower than numba in the forward "
        "pass on this CPU; it is the default because it runs on every backend and under XLA."
    )
    return f"{table}\n\n{after}" + measured_by(speed)


@block("train", "train_digits.json")
def render_train(train):
    figures = train["figures"]
    run = figures["runs"][0]
    seeds = len(figures["runs"])
    over = f" (median of {seeds} seeds)" if seeds > 1 else ""
    text = (
        f"`training/digits.toml` reaches {percent(figures['final_top1_median'])} top-1 on the {run['test_examples']} "
        f"held-out digits in {figures['wall_seconds_median']:.0f} s{over} (MobileNet 0.5 at 32x32 with output "
        "stride 16 and BatchNorm momentum 0.9)."
    )
    return prose(text) + measured_by(train)


@block("export", "export_vs_keras_applications.json", "demo.json")
def render_export(export, demo):
    files = export["figures"]["files"]
    fp32, int8 = files["ours fp32"], files["ours int8"]
    int8_digits = next(item for item in demo["figures"]["exports"] if item["file"] == "model_int8.tflite")
    delta = int8_digits["verification"]["top1_delta"]
    threads = export["machine"]["threads"]
    ratios = export["figures"]["ratios"]
    text = (
        f"For `mobilenet_v1_1.0_224` the TFLite file is op for op keras.applications' own export ({fp32['ops']} ops): "
        f"{fp32['mib']:.1f} MiB and {spread_ms(fp32['ms'])} per image in fp32, {int8['mib']:.2f} MiB and "
        f"{spread_ms(int8['ms'])} in int8 (LiteRT, {threads} threads; ours over keras.applications' time: "
        f"{ratio_text(ratios['fp32'])} in fp32, {ratio_text(ratios['int8'])} in int8); on the digits model int8 "
        f"changes top-1 by {delta:+.2f} points."
    )
    return prose(text) + measured_by(export, demo)


# --- training/README.md and export/README.md ---------------------------------------------------


@block("training-digits", "train_digits.json")
def render_training_digits(train):
    figures = train["figures"]
    text = (
        f"`digits.toml`: {percent(figures['final_top1_median'])} top-1 on the held-out digits after "
        f"{figures['runs'][0]['epochs']} epochs, {figures['wall_seconds_median']:.0f} s from the call to the saved "
        "files."
    )
    return prose(text) + measured_by(train)


@block("export-digits", "demo.json")
def render_export_digits(demo):
    rows = []
    for item in demo["figures"]["exports"]:
        check = item["verification"]
        bounds = check.get("accuracy_bounds")
        limits = (
            f"drop <= {bounds['max_top1_drop']:g} points, agreement >= {percent(bounds['min_agreement'], 0)}"
            if bounds
            else f"relative error <= {check['tolerance']:g}"
        )
        size = "not written" if item["bytes"] is None else f"{item['bytes'] / 1e6:.2f} MB"
        rows.append(
            f"| {item['file']} | {size} | {check['relative_error']:.1e} | {percent(check['top1_agreement'], 1)} | "
            f"{check['top1_delta']:+.2f} | {limits} | {'passed' if check['passed'] else 'refused'} |"
        )
    return (
        "The demo's files of the trained digits model, checked on the 360 test digits:\n\n"
        "| file | size | relative error | top-1 agreement | top-1 delta (points) | bound | check |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n" + measured_by(demo)
    )


# --- the rendering -----------------------------------------------------------------------------


def render_text(text, root=ROOT):
    """`text` with every figure block rendered from the result files under `root`."""

    def rendered(match):
        name = match["name"]
        if name not in BLOCKS:
            raise ValueError(f"No renderer for the figure block. Received: name={name!r}")
        function, files = BLOCKS[name]
        records = [json.loads((Path(root) / RESULTS / file).read_text()) for file in files]
        return f"<!-- figures:{name} -->\n{function(*records).rstrip()}\n<!-- /figures:{name} -->"

    return BLOCK.sub(rendered, text)


def differing(root=ROOT):
    """{document: rendered text} of the documents whose blocks differ from what their results render."""
    changed = {}
    for document in DOCUMENTS:
        path = Path(root) / document
        text = path.read_text()
        new = render_text(text, root)
        if new != text:
            changed[document] = new
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a block differs")
    parser.add_argument("--root", default=str(ROOT), help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from mobilenet_sep.utils.files import write_atomically

    changed = differing(args.root)
    for document, text in changed.items():
        if args.check:
            print(f"{document}: figures differ from benchmarks/results (run python benchmarks/render_readme.py)")
        else:
            write_atomically({str(Path(args.root) / document): text})
            print(f"{document}: figures rendered")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
