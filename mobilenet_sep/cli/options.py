"""The flags several commands share, each declared once, and the parsing of their values.

Only vocabulary modules (light, no TensorFlow) are read here: `mobilenet-sep --help` stays fast.
Values are checked by the library the command calls, not again here.
"""

import re

from mobilenet_sep.cli.common import UsageError
from mobilenet_sep.speed.runtimes import RUNTIMES


def add_json(parser, what="a table"):
    parser.add_argument("--json", action="store_true", help=f"print JSON instead of {what}")


def add_plot(parser, what):
    parser.add_argument("--plot", metavar="PNG", help=f"also write {what} to this PNG file")


def add_record(parser):
    parser.add_argument(
        "--record",
        metavar="JSON",
        help="also write the figures with the command, machine, package versions and date to this file "
        "(README's figures come from benchmarks/results/*.json)",
    )


def add_runtimes(parser, default):
    parser.add_argument(
        "--runtimes", default=None, help=f"comma-separated, among {', '.join(RUNTIMES)} (default {','.join(default)})"
    )


def add_timing(parser, batch_size=1, batch_help="images per timed run"):
    """--batch-size, --threads and --repeats: the timing harness's knobs."""
    parser.add_argument("--batch-size", type=int, default=batch_size, help=f"{batch_help} (default {batch_size})")
    parser.add_argument("--threads", type=int, help="threads of every runtime (default: all available cores)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per figure, after warm-up (default 30)")


def add_size(parser, what="input size"):
    parser.add_argument("--size", help=f"{what}: HxW or S, e.g. 160x128")


def parse_size(text):
    """ "160x128" -> (160, 128); "224" -> (224, 224); anything else is a UsageError (sizes are the builder's to judge)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match:
        raise UsageError(f"--size must be HxW or S with integers, e.g. 160x128. Received: size={text!r}")
    return int(match[1]), int(match[2] or match[1])
