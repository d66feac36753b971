"""The `mobilenet-sep` command: parse arguments, call the library, print.

Each subcommand lives in its own module (`*_command.py`) with `add_parser(commands)`
and a `run(args, console)` that is a thin shell over a library call a user could
make from Python. Bad input ends with one line on stderr and exit code 2.
"""

import argparse
import shlex
import sys

from rich.console import Console

from mobilenet_sep.cli import (
    benchmark_command,
    compare_command,
    demo_command,
    evaluate_command,
    export_command,
    profile_command,
    train_command,
    zoo_command,
)
from mobilenet_sep.cli.common import UsageError

EXIT_USAGE = 2
COMMANDS = (
    zoo_command,
    profile_command,
    compare_command,
    demo_command,
    export_command,
    benchmark_command,
    train_command,
    evaluate_command,
)
"""Each command's module, in the order `--help` lists them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser():
    parser = _Parser(prog="mobilenet-sep", description="MobileNetV1 zoo: profile, compare, train, export.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv=None):
    # Pipes and files get wide tables rather than rich's 80-column default.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    errors = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        args.command_line = shlex.join(["mobilenet-sep", *(sys.argv[1:] if argv is None else argv)])
        args.run(args, console)
    except (UsageError, ValueError, FileNotFoundError, PermissionError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    return 0
