"""The `mobilenet-sep` command: parse arguments, call the library, print.

Every subcommand is a thin shell over a library call a user could make from
Python. Bad input ends with one line on stderr and exit code 2, no traceback.
"""

import argparse
import contextlib
import json
import os
import sys

from rich.console import Console
from rich.table import Table

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


@contextlib.contextmanager
def _quiet_native_logs():
    """Hide the C++ start-up chatter TensorFlow prints before its logging is set up."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_tensorflow():
    with _quiet_native_logs():
        import tensorflow

        tensorflow.config.list_physical_devices()  # probes CUDA now, while the chatter is hidden


def _print_json(console, data):
    console.print_json(json.dumps(data))


def cmd_zoo(args, console):
    from mobilenet_sep import zoo

    names = zoo.list_models(args.pattern)
    if not names:
        raise UsageError(f"No zoo model matches the pattern. Received: pattern={args.pattern!r}")
    _import_tensorflow()
    rows = []
    for name in names:
        entry = zoo.get_entry(name)
        model = entry.build()
        height, width = model.input_shape[1:3]
        rows.append(
            {
                "name": name,
                "alpha": entry.config.get("alpha"),
                "size": f"{height}x{width}",
                "separable": entry.config.get("separable", True),
                "parameters": model.count_params(),
                "published": entry.published,
            }
        )
    if args.json:
        _print_json(console, rows)
        return
    table = Table(title="mobilenet-sep zoo")
    for column in ("name", "alpha", "size", "parameters", "published mult-adds (M)", "published top-1 (%)"):
        table.add_column(column, justify="left" if column == "name" else "right", no_wrap=column == "name")
    for row in rows:
        published = row["published"]
        mult_adds = " / ".join(f"{figures['mult_adds_millions']} {source}" for source, figures in published.items())
        top1 = " / ".join(f"{figures['top1']} {source}" for source, figures in published.items())
        table.add_row(
            row["name"], f"{row['alpha']}", row["size"], f"{row['parameters']:,}", mult_adds or "-", top1 or "-"
        )
    console.print(table)


def build_parser():
    parser = _Parser(prog="mobilenet-sep", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    zoo_parser = commands.add_parser("zoo", help="list the named models with their parameters and published figures")
    zoo_parser.add_argument("pattern", nargs="?", default="*", help="glob pattern, e.g. '*_224'")
    zoo_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    zoo_parser.set_defaults(run=cmd_zoo)
    return parser


def main(argv=None):
    # Pipes and files get wide tables rather than rich's 80-column default.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    errors = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        args.run(args, console)
    except (UsageError, ValueError, FileNotFoundError, PermissionError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
