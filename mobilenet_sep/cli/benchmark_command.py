"""`mobilenet-sep benchmark MODEL [--runtimes tf,onnx,litert,litert-int8] [--batch-size N] [--threads N] [--json]`."""

from rich.table import Table

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json, quiet_native_logs

DEFAULT_RUNTIMES = ("tf", "tf-fused", "onnx", "litert", "litert-int8")
EXPORTED_SUFFIXES = (".onnx", ".tflite")


def add_parser(commands):
    parser = commands.add_parser(
        "benchmark", help="latency at batch 1 and throughput at a batch size on TensorFlow, ONNX Runtime, LiteRT"
    )
    parser.add_argument("model", help="a zoo name, a .keras file, or an exported .onnx / .tflite file")
    options.add_runtimes(parser, DEFAULT_RUNTIMES)
    options.add_timing(parser, batch_size=32, batch_help="batch size of the throughput run")
    options.add_json(parser)
    parser.set_defaults(run=run)


def run(args, console):
    from mobilenet_sep.speed import measure
    from mobilenet_sep.speed.runtimes import check_runtimes

    exported = args.model.endswith(EXPORTED_SUFFIXES)
    if exported and args.runtimes is not None:
        raise UsageError(
            f"--runtimes applies to models; an exported file runs on its own runtime. Received: runtimes={args.runtimes!r}"
        )
    runtimes = check_runtimes(args.runtimes or DEFAULT_RUNTIMES)
    timing = {"batch_sizes": tuple(sorted({1, args.batch_size})), "threads": args.threads, "repeats": args.repeats}
    import_tensorflow()
    with console.status("benchmarking") as status, quiet_native_logs():
        if exported:
            timings = measure.measure_file(args.model, progress=status.update, **timing)
        else:
            from mobilenet_sep import zoo

            measure.set_tensorflow_threads(args.threads or measure.available_threads())  # before the first op
            model = zoo.load_model(args.model)
            timings = measure.measure_model(model, runtimes, progress=status.update, **timing)
    if args.json:
        print_json(console, {"model": args.model, "timings": [timing.to_dict() for timing in timings]})
        return
    console.print(_table(args.model, timings, args.batch_size))


def _table(model, timings, batch_size):
    table = Table(title=f"{model}: median of timed runs after warm-up (p25-p75)")
    for column in ("runtime", "threads", "file MB", "batch 1 latency ms", f"batch {batch_size} images/s", "note"):
        table.add_column(column, justify="left" if column in ("runtime", "note") else "right", no_wrap=column != "note")
    for runtime in dict.fromkeys(timing.runtime for timing in timings):
        rows = {timing.batch_size: timing for timing in timings if timing.runtime == runtime}
        latency, throughput = rows[1], rows[batch_size]
        low, high = latency.quartiles_s
        size = f"{latency.file_bytes / 1e6:.2f}" if latency.file_bytes is not None else "-"
        table.add_row(
            runtime,
            str(latency.threads),
            size,
            f"{1e3 * latency.median_s:.2f} ({1e3 * low:.2f}-{1e3 * high:.2f})",
            f"{throughput.images_per_second:.1f}",
            latency.note,
        )
    return table
