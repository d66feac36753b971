"""`mobilenet-sep compare MODEL | --layer SPEC [--runtimes ...] [--json] [--plot out.png] [--record out.json]`.

Predicted (mult-adds) against measured speed-up of standard over separable convolution: MODEL (a zoo
MobileNet or a `.keras` file of one) against its fair twin, or one layer spec, timed in alternating rounds.
`--per-layer [--csv out.csv]` measures every layer against this machine's ceilings (`speed.per_layer`).
"""

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json, quiet_native_logs
from mobilenet_sep.speed.runtimes import COMPARE_RUNTIMES, PER_LAYER_RUNTIMES
from mobilenet_sep.utils.files import check_output_path

FULL_REPEATS = 30
"""Rounds of a run of record; fewer make a result marked as a short run."""


def add_parser(commands):
    parser = commands.add_parser(
        "compare", help="standard vs separable convolution: predicted (mult-adds) and measured speed-up per runtime"
    )
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument(
        "model", nargs="?", help="a zoo MobileNet name or a .keras file of one; compared with its fair twin"
    )
    subject.add_argument("--layer", help="one layer instead: HxWxC:kK:sS:same|valid:nN, e.g. 12x12x3:k5:s1:valid:n256")
    options.add_runtimes(parser, COMPARE_RUNTIMES)
    options.add_timing(parser)
    options.add_json(parser)
    options.add_plot(
        parser,
        "a bar chart of predicted vs measured speed-up (--per-layer: a roofline chart, and beside it "
        "*_layers.png, measured against roofline time per layer)",
    )
    options.add_record(parser)
    parser.add_argument(
        "--per-layer",
        action="store_true",
        help="measured cost of every layer against this machine's ceilings, per runtime "
        f"(default runtimes {','.join(PER_LAYER_RUNTIMES)})",
    )
    parser.add_argument("--csv", metavar="CSV", help="with --per-layer: also write one row per layer to this file")
    parser.set_defaults(run=run)


def run(args, console):
    from mobilenet_sep.speed.runtimes import check_runtimes

    runtimes = check_runtimes(args.runtimes or (PER_LAYER_RUNTIMES if args.per_layer else COMPARE_RUNTIMES))
    if args.csv and not args.per_layer:
        raise UsageError(f"--csv writes the per-layer rows: add --per-layer. Received: csv={args.csv!r}")
    for path, argument in ((args.plot, "plot"), (args.record, "record"), (args.csv, "csv")):
        if path:
            check_output_path(path, argument)  # before minutes of timing
    import_tensorflow()
    result = _compare(args, runtimes, console)
    if args.per_layer:
        return _show_per_layer(args, result, console)
    from mobilenet_sep.speed import render

    if args.plot:
        render.comparison_plot(result, args.plot)
    if args.record:
        _record(args, result)
    if args.json:
        print_json(console, {**result.to_dict(), "plot": args.plot, "record": args.record})
        return
    console.print(render.comparison_table(result))
    for path, what in ((args.plot, "plot"), (args.record, "record")):
        if path:
            console.print(f"{what} written to {path}", markup=False, highlight=False)


def _compare(args, runtimes, console):
    """The library call: the layer spec's two models, or the model and its twin."""
    from mobilenet_sep import zoo
    from mobilenet_sep.speed import compare, measure

    spec = compare.LayerSpec.parse(args.layer) if args.layer else None
    if spec is None and not args.model.endswith(".keras"):
        zoo.twin_names(args.model)  # an unknown name fails before any model is built
    measure.set_tensorflow_threads(args.threads or measure.available_threads())  # before the first op
    timing = {"runtimes": runtimes, "batch_size": args.batch_size, "threads": args.threads, "repeats": args.repeats}
    with console.status("comparing") as status, quiet_native_logs():
        timing["progress"] = status.update
        if args.per_layer:
            from mobilenet_sep.speed import per_layer

            if spec:
                return per_layer.per_layer_of_spec(spec, **timing)
            return per_layer.per_layer_with_twin(args.model, **timing)
        return compare.compare_layer(spec, **timing) if spec else compare.compare_with_twin(args.model, **timing)


def _show_per_layer(args, result, console):
    """Write the per-layer plots, CSV and record asked for; print JSON, or the tables."""
    from mobilenet_sep.speed import per_layer_render as render

    layers_plot = render.layers_plot_path(args.plot) if args.plot else None
    if args.plot:
        render.roofline_plot(result, args.plot)
        render.layers_plot(result, layers_plot)
    if args.csv:
        render.write_csv(result, args.csv)
    if args.record:
        _record(args, result)
    written = {"plot": args.plot, "layers_plot": layers_plot, "csv": args.csv, "record": args.record}
    if args.json:
        print_json(console, {**result.to_dict(), **written})
        return
    console.print(render.summary_table(result))
    console.print(render.kind_table(result))
    for runtime in result.runtimes:
        for role in ("separable", "standard"):
            console.print(render.layer_table(runtime, role))
    for what, path in written.items():
        if path:
            console.print(f"{what.replace('_', ' ')} written to {path}", markup=False, highlight=False)


def _record(args, result):
    from mobilenet_sep.speed import measure
    from mobilenet_sep.utils.record import result_record, write_result

    short = f"{args.repeats} rounds (a run of record has {FULL_REPEATS})" if args.repeats < FULL_REPEATS else None
    threads = args.threads or measure.available_threads()
    write_result(args.record, result_record(result.to_dict(), command=args.command_line, threads=threads, short_run=short))
