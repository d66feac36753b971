"""`mobilenet-sep profile NAME_OR_FILE [--size HxW] [--alpha A] [--json|--csv] [--plot out.png]`: exact counts."""

import dataclasses
import re

from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json
from mobilenet_sep.files import check_output_path


def add_parser(commands):
    parser = commands.add_parser("profile", help="multiply-adds and parameters of every layer, exact")
    parser.add_argument("model", help="a zoo name (see `mobilenet-sep zoo`) or a .keras file")
    parser.add_argument("--size", help="input size HxW or S (zoo names only), e.g. 160x128")
    parser.add_argument("--alpha", type=float, help="width multiplier (zoo names only)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    output.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart per layer to this PNG file")
    parser.set_defaults(run=run)


def parse_size(text):
    """ "160x128" -> (160, 128); "224" -> (224, 224); anything else, or a zero size, is a UsageError."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match:
        raise UsageError(f"--size must be HxW or S with positive integers, e.g. 160x128. Received: size={text!r}")
    height, width = int(match[1]), int(match[2] or match[1])
    if min(height, width) <= 0:
        raise UsageError(f"--size must be positive. Received: size={text!r}")
    return height, width


def _overrides(args, entry):
    """--alpha and --size as MobileNetV1 arguments; the input keeps the zoo entry's channels."""
    overrides = {}
    if args.alpha is not None:
        if not args.alpha > 0:
            raise UsageError(f"--alpha must be a number > 0. Received: alpha={args.alpha:g}")
        overrides["alpha"] = args.alpha
    if args.size is not None:
        channels = entry.config.get("input_shape", (0, 0, 3))[2] if entry else 3
        overrides["input_shape"] = (*parse_size(args.size), channels)
    return overrides


def _published(entry, overrides):
    """The entry's printed figures, unless the overrides change its width or size."""
    if entry is None:
        return {}
    changes = {key: list(value) if isinstance(value, tuple) else value for key, value in overrides.items()}
    return entry.published if {**entry.config, **changes} == entry.config else {}


def run(args, console):
    from mobilenet_sep import zoo

    entry = None if args.model.endswith(".keras") else zoo.get_entry(args.model)
    overrides = _overrides(args, entry)
    if args.plot:
        check_output_path(args.plot, "plot")
    import_tensorflow()
    from mobilenet_sep.profiler import profile
    from mobilenet_sep.profiler_render import compare_published

    result = profile(zoo.load_model(args.model, **overrides))
    figures = compare_published(result, _published(entry, overrides))
    if args.plot:
        result.plot(args.plot)
    if args.json:
        data = result.to_dict()
        data["published"] = [{**dataclasses.asdict(figure), "agrees": figure.agrees} for figure in figures]
        data["plot"] = args.plot
        print_json(console, data)
    elif args.csv:
        console.out(result.to_csv(), highlight=False, end="")
    else:
        console.print(result.table(figures))
        if args.plot:
            console.print(f"plot written to {args.plot}", markup=False, highlight=False)
