"""`mobilenet-sep profile NAME_OR_FILE [--size HxW] [--alpha A] [--json|--csv] [--plot out.png]`: exact counts."""

import dataclasses

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import import_tensorflow, print_json
from mobilenet_sep.utils.files import check_output_path


def add_parser(commands):
    parser = commands.add_parser("profile", help="multiply-adds and parameters of every layer, exact")
    parser.add_argument("model", help="a zoo name (see `mobilenet-sep zoo`) or a .keras file")
    options.add_size(parser, "input size (zoo names only)")
    parser.add_argument("--alpha", type=float, help="width multiplier (zoo names only)")
    output = parser.add_mutually_exclusive_group()
    options.add_json(output)
    output.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    options.add_plot(parser, "a bar chart per layer")
    parser.set_defaults(run=run)


def _overrides(args, entry):
    """--alpha and --size as MobileNetV1 arguments; the input keeps the zoo entry's channels."""
    overrides = {}
    if args.alpha is not None:
        overrides["alpha"] = args.alpha
    if args.size is not None:
        shape = tuple(entry.config.get("input_shape", (0, 0, 3))) if entry else (0, 0, 3)
        if len(shape) != 3:
            raise ValueError(
                f"--size applies to image models; this one takes inputs of shape {shape}. Received: size={args.size!r}"
            )
        overrides["input_shape"] = (*options.parse_size(args.size), shape[2])
    return overrides


def _published(entry, overrides):
    """The entry's printed figures, unless the overrides change its width or size."""
    if entry is None:
        return {}
    changes = {key: list(value) if isinstance(value, tuple) else value for key, value in overrides.items()}
    return entry.published if {**entry.config, **changes} == entry.config else {}


def run(args, console):
    if args.plot:
        check_output_path(args.plot, "plot")
    import_tensorflow()
    from mobilenet_sep import zoo
    from mobilenet_sep.profiler import profile, render

    entry = None if args.model.endswith(".keras") else zoo.get_entry(args.model)
    overrides = _overrides(args, entry)

    result = profile(zoo.load_model(args.model, **overrides))
    figures = render.compare_published(result, _published(entry, overrides))
    if args.plot:
        render.to_png(result, args.plot)
    if args.json:
        data = result.to_dict()
        data["published"] = [{**dataclasses.asdict(figure), "agrees": figure.agrees} for figure in figures]
        data["plot"] = args.plot
        print_json(console, data)
    elif args.csv:
        console.out(render.to_csv(result), highlight=False, end="")
    else:
        console.print(render.to_table(result, figures))
        if args.plot:
            console.print(f"plot written to {args.plot}", markup=False, highlight=False)
