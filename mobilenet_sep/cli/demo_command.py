"""`mobilenet-sep demo [--out DIR] [--quick] [--record JSON]`: the whole job offline, one summary table and report.md."""

import os

from rich.table import Table

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import import_tensorflow, print_json, quiet_native_logs
from mobilenet_sep.cli.progress import DemoConsoleProgress
from mobilenet_sep.utils.files import check_output_path

QUICK = {"epochs": 3, "repeats": 5}
"""--quick: a short training and few timed runs, for a first look and for CI."""
FULL_REPEATS = 30
"""Timed runs of a run of record; a result with fewer, or fewer epochs than the recipe's, is marked short."""


def add_parser(commands):
    parser = commands.add_parser(
        "demo",
        help="train digits, evaluate, profile, export (ONNX, TFLite fp32/int8), verify, benchmark, compare: offline",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo); rerun to resume")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the digits recipe's)")
    parser.add_argument(
        "--repeats", type=int, default=FULL_REPEATS, help=f"timed runs per figure after warm-up (default {FULL_REPEATS})"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"a short run: {QUICK['epochs']} epochs, {QUICK['repeats']} timed runs"
    )
    options.add_json(parser, "the summary table (progress on stderr)")
    options.add_record(parser)
    parser.set_defaults(run=run)


def run(args, console):
    from rich.console import Console

    epochs, repeats = args.epochs, args.repeats
    if args.quick:  # an explicit --epochs still wins
        epochs, repeats = epochs or QUICK["epochs"], QUICK["repeats"]
    if args.record:
        check_output_path(args.record, "record")  # before minutes of work
    import_tensorflow()
    from mobilenet_sep.demo import run_demo

    # With --json, progress goes to stderr: a copy of it, since native logs are silenced on fd 2 below.
    progress_console = Console(file=os.fdopen(os.dup(2), "w", buffering=1)) if args.json else console
    progress = DemoConsoleProgress(progress_console)
    try:
        with quiet_native_logs():
            result = run_demo(args.out, epochs=epochs, repeats=repeats, progress=progress)
    finally:
        progress.close()
    rows = result.summary()
    if args.record:
        _record(args, result, epochs, repeats)
    if args.json:
        print_json(console, {"report": result.report_path, "summary": [list(row) for row in rows]})
        return
    table = Table(title=f"mobilenet-sep demo: {result.separable.model_name} vs its fair standard-conv twin")
    for column in ("", "what", "value"):
        table.add_column(column)
    for section, item, value in rows:
        table.add_row(section, item, value)
    console.print(table)
    console.print(f"report: {result.report_path}", markup=False, highlight=False)
    if args.record:
        console.print(f"record: {args.record}", markup=False, highlight=False)


def _record(args, result, epochs, repeats):
    from mobilenet_sep.speed.measure import available_threads
    from mobilenet_sep.utils.record import result_record, write_result

    cut = [f"{epochs} epochs"] if epochs is not None else []
    cut += [f"{repeats} timed runs (a run of record has {FULL_REPEATS})"] if repeats < FULL_REPEATS else []
    short = ", ".join(cut) or None
    record = result_record(result.to_dict(), command=args.command_line, threads=available_threads(), short_run=short)
    write_result(args.record, record)
