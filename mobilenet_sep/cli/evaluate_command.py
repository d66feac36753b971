"""`mobilenet-sep evaluate MODEL DATASET [--fuse] [--plot confusion.png] [--json]`: top-1/top-5, loss, confusion."""

from rich.table import Table

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json
from mobilenet_sep.utils.files import check_output_path


def add_parser(commands):
    parser = commands.add_parser(
        "evaluate",
        help="top-1/top-5 accuracy, loss and confusion matrix of a model on a dataset",
        description="Evaluate a trained model (.keras) on a dataset's test split (or the split the spec names).",
    )
    parser.add_argument("model", help="a .keras file (e.g. runs/digits/best.keras)")
    parser.add_argument("dataset", help="digits, tfds:NAME[:SPLIT], folder:PATH, ...")
    parser.add_argument("--split", default="test", help="split to evaluate when the spec names none (default: test)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fuse", action="store_true", help="fold BatchNorm first (mobilenet_sep.fuse): faster")
    options.add_size(parser, "input size for models built for any size")
    parser.add_argument("--data-dir", help="where tensorflow-datasets keeps its files")
    parser.add_argument("--download", action="store_true", help="let tensorflow-datasets download")
    options.add_plot(parser, "the confusion matrix")
    options.add_json(parser, "tables")
    parser.set_defaults(run=run)


def _input_shape(model, size):
    """The model's input shape; --size fills in the height and width of a model built for any size."""
    shape = tuple(model.input_shape[1:])
    if None not in shape:
        return shape
    if size is None:
        raise UsageError(f"The model takes any input size; pass --size HxW. Received: input_shape={shape}")
    return (*options.parse_size(size), *shape[2:])


def _confusion_table(metrics):
    names = metrics["class_names"]
    table = Table(title="confusion matrix (rows: true class, columns: predicted)")
    table.add_column("true \\ predicted", no_wrap=True)
    for name in names:
        table.add_column(str(name), justify="right")
    for name, row in zip(names, metrics["confusion_matrix"], strict=True):
        table.add_row(str(name), *(str(count) if count else "." for count in row))
    return table


def run(args, console):
    if args.plot:
        check_output_path(args.plot, "plot")
    import_tensorflow()
    from mobilenet_sep import zoo
    from mobilenet_sep.data import DataOptions, load_dataset
    from mobilenet_sep.export.fuse import fuse
    from mobilenet_sep.train.evaluate import evaluate
    from mobilenet_sep.train.render import plot_confusion

    model = zoo.load_model(args.model)
    if args.fuse:
        model = fuse(model)
    options = DataOptions(
        args.split,
        _input_shape(model, args.size),
        args.batch_size,
        data_dir=args.data_dir,
        download=args.download,
    )
    loaded = load_dataset(args.dataset, options)
    metrics = evaluate(model, loaded)
    metrics.update(model=args.model, fused=args.fuse, dataset=args.dataset, skipped_files=loaded.skipped)
    if args.plot:
        plot_confusion(metrics, args.plot, title=f"{model.name} on {args.dataset}")
    if args.json:
        print_json(console, metrics)
        return
    console.print(f"[bold]{model.name}[/] on {args.dataset} ({args.split} split unless the spec names one)")
    summary = Table(show_header=False)
    summary.add_column()
    summary.add_column(justify="right")
    summary.add_row("examples", f"{metrics['examples']:,}")
    summary.add_row("top-1", f"{metrics['top1']:.2%}")
    if "top5" in metrics:
        summary.add_row("top-5", f"{metrics['top5']:.2%}")
    summary.add_row("loss", f"{metrics['loss']:.4f}")
    console.print(summary)
    if len(metrics["class_names"]) <= 20:
        console.print(_confusion_table(metrics))
    if loaded.skipped:
        console.print(f"skipped {loaded.skipped} unreadable image file(s)")
    if args.plot:
        console.print(f"wrote {args.plot}")
