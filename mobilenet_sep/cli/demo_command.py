"""`mobilenet-sep demo [--out DIR] [--quick]`: the whole job offline, one summary table and report.md."""

import os

from rich.table import Table

from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json, quiet_native_logs
from mobilenet_sep.cli.train_command import TrainProgress

QUICK = {"epochs": 3, "repeats": 5}
"""--quick: a short training and few timed runs, for a first look and for CI."""


def add_parser(commands):
    parser = commands.add_parser(
        "demo",
        help="train digits, evaluate, profile, export (ONNX, TFLite fp32/int8), verify, benchmark, compare: offline",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo); rerun to resume")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the digits recipe's)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per figure after warm-up (default 30)")
    parser.add_argument(
        "--quick", action="store_true", help=f"a short run: {QUICK['epochs']} epochs, {QUICK['repeats']} timed runs"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (progress on stderr)")
    parser.set_defaults(run=run)


class _ConsoleProgress:
    """A line per step, a spinner within it on a terminal, and the training engine's bars: one live display at a time."""

    def __init__(self, console):
        self.console = console
        self.status = console.status("") if console.is_terminal else None
        self.training = _Training(console, before=self._stop_status)

    def _stop_status(self):
        if self.status is not None:
            self.status.stop()

    def stage(self, message):
        self.training.stop()
        self.console.print(f"[bold cyan]>[/] {message}")
        if self.status is not None:
            self.status.update(message)
            self.status.start()

    def detail(self, message):
        if self.status is not None:
            self.status.update(message)

    def close(self):
        self._stop_status()
        self.training.stop()


class _Training(TrainProgress):
    """The train command's bars, started when the engine starts (after the spinner stops)."""

    def __init__(self, console, before):
        super().__init__(console)
        self.before = before

    def start(self, plan):
        self.before()
        self.bar.start()
        super().start(plan)

    def stop(self):
        if self.bar.live.is_started:  # rich prints an empty line when a bar that never started stops
            self.bar.stop()


def _options(args):
    epochs, repeats = args.epochs, args.repeats
    if args.quick:  # an explicit --epochs still wins
        epochs, repeats = epochs or QUICK["epochs"], QUICK["repeats"]
    for name, value in (("epochs", epochs), ("repeats", repeats)):
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be a positive int. Received: {name}={value}")
    return {"epochs": epochs, "repeats": repeats}


def run(args, console):
    from rich.console import Console

    options = _options(args)
    import_tensorflow()
    from mobilenet_sep.demo import run_demo

    # With --json, progress goes to stderr: a copy of it, since native logs are silenced on fd 2 below.
    progress_console = Console(file=os.fdopen(os.dup(2), "w", buffering=1)) if args.json else console
    progress = _ConsoleProgress(progress_console)
    try:
        with quiet_native_logs():
            result = run_demo(args.out, progress=progress, **options)
    finally:
        progress.close()
    rows = result.summary()
    if args.json:
        print_json(console, {"report": result.report_path, "summary": [list(row) for row in rows]})
        return
    table = Table(title=f"mobilenet-sep demo: {result.separable.model_name} vs its standard-conv twin")
    for column in ("", "what", "value"):
        table.add_column(column)
    for section, item, value in rows:
        table.add_row(section, item, value)
    console.print(table)
    console.print(f"report: {result.report_path}", markup=False, highlight=False)
