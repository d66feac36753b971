"""`mobilenet-sep zoo [PATTERN] [--json]`: the named models, their parameters and published figures."""

from rich.table import Table

from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json


def add_parser(commands):
    parser = commands.add_parser("zoo", help="list the named models with their parameters and published figures")
    parser.add_argument("pattern", nargs="?", default="*", help="glob pattern, e.g. '*_224'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args, console):
    from mobilenet_sep import zoo

    names = zoo.list_models(args.pattern)
    if not names:
        raise UsageError(f"No zoo model matches the pattern. Received: pattern={args.pattern!r}")
    import_tensorflow()
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
        print_json(console, rows)
        return
    table = Table(title="mobilenet-sep zoo")
    for column in ("name", "alpha", "size", "parameters", "published mult-adds (M)", "published top-1 (%)"):
        table.add_column(column, justify="left" if column == "name" else "right", no_wrap=column == "name")
    for row in rows:
        published = row["published"]
        mult_adds = " / ".join(f"{figures['mult_adds_millions']} {source}" for source, figures in published.items())
        top1 = " / ".join(f"{figures['top1']} {source}" for source, figures in published.items())
        table.add_row(row["name"], f"{row['alpha']}", row["size"], f"{row['parameters']:,}", mult_adds or "-", top1 or "-")
    console.print(table)
