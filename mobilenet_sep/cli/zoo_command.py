"""`mobilenet-sep zoo [PATTERN] [--json]`: the named models, their parameters and published figures."""

from rich.table import Table

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json


def add_parser(commands):
    parser = commands.add_parser("zoo", help="list the named models with their parameters and published figures")
    parser.add_argument("pattern", nargs="?", default="*", help="glob pattern, e.g. '*_224'")
    options.add_json(parser)
    parser.set_defaults(run=run)


def run(args, console):
    import_tensorflow()
    from mobilenet_sep import zoo
    from mobilenet_sep.profiler import profile

    names = zoo.list_models(args.pattern)
    if not names:
        raise UsageError(f"No zoo model matches the pattern. Received: pattern={args.pattern!r}")

    rows = []
    for name in names:
        entry = zoo.get_entry(name)
        model = entry.build()
        rows.append(
            {
                "name": name,
                "alpha": entry.config.get("alpha"),
                "input": _input_text(model.input_shape),
                "separable": entry.config.get("separable", True),
                "parameters": model.count_params(),
                "mult_adds": profile(model).mult_adds,
                "published": entry.published,
            }
        )
    if args.json:
        print_json(console, rows)
        return
    table = Table(title="mobilenet-sep zoo")
    columns = (
        "name",
        "alpha",
        "input",
        "parameters",
        "exact mult-adds (M)",
        "published mult-adds (M)",
        "published top-1 (%)",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "name" else "right", no_wrap=column == "name")
    for row in rows:
        published = row["published"]
        mult_adds, top1 = _published_text(published, "mult_adds_millions"), _published_text(published, "top1")
        exact = f"{row['mult_adds'] / 1e6:,.2f}"
        alpha = "-" if row["alpha"] is None else f"{row['alpha']}"
        table.add_row(row["name"], alpha, row["input"], f"{row['parameters']:,}", exact, mult_adds, top1)
    console.print(table)


def _input_text(input_shape):
    """224x224 for images, 2048 points for point clouds."""
    if len(input_shape) == 3:
        return f"{input_shape[1]} points"
    return f"{input_shape[1]}x{input_shape[2]}"


def _published_text(published, key):
    """ "569 paper / 569 tf_slim" for the sources that print `key`; "-" when none does."""
    return " / ".join(f"{figures[key]} {source}" for source, figures in published.items() if key in figures) or "-"
