"""`mobilenet-sep compare NAME | --layer SPEC [--runtimes ...] [--json] [--plot out.png]`: predicted vs measured."""

from mobilenet_sep.cli.common import check_positive, import_tensorflow, parse_runtimes, print_json, quiet_native_logs
from mobilenet_sep.compare import DEFAULT_RUNTIMES
from mobilenet_sep.files import check_output_path
from mobilenet_sep.measure import RUNTIMES


def add_parser(commands):
    parser = commands.add_parser(
        "compare", help="standard vs separable convolution: predicted (mult-adds) and measured speed-up per runtime"
    )
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument("model", nargs="?", help="a zoo MobileNet name; compared with its conv_ twin")
    subject.add_argument("--layer", help="one layer instead: HxWxC:kK:sS:same|valid:nN, e.g. 12x12x3:k5:s1:valid:n256")
    parser.add_argument(
        "--runtimes", default=",".join(DEFAULT_RUNTIMES), help=f"comma-separated among {', '.join(RUNTIMES)}"
    )
    parser.add_argument("--batch-size", type=int, default=1, help="images per timed run (default 1)")
    parser.add_argument("--threads", type=int, help="threads of every runtime (default: all available cores)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per figure after warm-up (default 30)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart of predicted vs measured to this file")
    parser.set_defaults(run=run)


def run(args, console):
    runtimes = parse_runtimes(args.runtimes)
    check_positive(args, "batch_size", "threads", "repeats")
    if args.plot:
        check_output_path(args.plot, "plot")  # before minutes of timing
    import_tensorflow()
    from mobilenet_sep import compare, measure

    spec = compare.LayerSpec.parse(args.layer) if args.layer else None
    if spec is None:
        compare.twin_names(args.model)  # an unknown name fails before any model is built
    threads = args.threads or measure.available_threads()
    measure.set_tensorflow_threads(threads)  # before the first op: TensorFlow fixes its pools then
    options = {"runtimes": runtimes, "batch_size": args.batch_size, "threads": threads, "repeats": args.repeats}
    with console.status("comparing") as status, quiet_native_logs():
        options["progress"] = status.update
        result = compare.compare_layer(spec, **options) if spec else compare.compare_zoo_model(args.model, **options)
    if args.plot:
        result.plot(args.plot)
    if args.json:
        print_json(console, {**result.to_dict(), "plot": args.plot})
        return
    console.print(result.table())
    if args.plot:
        console.print(f"plot written to {args.plot}", markup=False, highlight=False)
