"""`mobilenet-sep benchmark MODEL [--runtimes tf,onnx,litert,litert-int8] [--batch-size N] [--threads N] [--json]`."""

from rich.table import Table

from mobilenet_sep.cli.common import (
    UsageError,
    check_positive,
    import_tensorflow,
    parse_runtimes,
    print_json,
    quiet_native_logs,
)
from mobilenet_sep.measure import RUNTIMES

DEFAULT_RUNTIMES = "tf,onnx,litert,litert-int8"
EXPORTED_SUFFIXES = (".onnx", ".tflite")


def add_parser(commands):
    parser = commands.add_parser(
        "benchmark", help="latency at batch 1 and throughput at a batch size on TensorFlow, ONNX Runtime, LiteRT"
    )
    parser.add_argument("model", help="a zoo name, a .keras file, or an exported .onnx / .tflite file")
    parser.add_argument("--runtimes", help=f"comma-separated, among {', '.join(RUNTIMES)} (default {DEFAULT_RUNTIMES})")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput run (default 32)")
    parser.add_argument("--threads", type=int, help="threads of every runtime (default: all available cores)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per figure, after warm-up (default 30)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def _check_arguments(args):
    check_positive(args, "batch_size", "threads", "repeats")
    if args.model.endswith(EXPORTED_SUFFIXES) and args.runtimes is not None:
        raise UsageError(
            f"--runtimes applies to models; an exported file runs on its own runtime. Received: runtimes={args.runtimes!r}"
        )


def run(args, console):
    from mobilenet_sep import measure

    _check_arguments(args)
    runtimes = parse_runtimes(args.runtimes or DEFAULT_RUNTIMES)
    batch_sizes = tuple(sorted({1, args.batch_size}))
    threads = args.threads or measure.available_threads()
    options = {"batch_sizes": batch_sizes, "threads": threads, "repeats": args.repeats}
    import_tensorflow()
    with console.status("benchmarking") as status, quiet_native_logs():
        if args.model.endswith(EXPORTED_SUFFIXES):
            timings = measure.measure_file(args.model, progress=status.update, **options)
        else:
            from mobilenet_sep import zoo

            measure.set_tensorflow_threads(threads)  # before the first op: TensorFlow fixes its pools then
            model = zoo.load_model(args.model)
            timings = measure.measure_model(model, runtimes, progress=status.update, **options)
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
