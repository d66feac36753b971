"""`mobilenet-sep export MODEL --format onnx|tflite|keras [--quantize ...] [--fuse] [--data SPEC] [--out PATH]`."""

import os

from rich.table import Table

from mobilenet_sep.cli import options
from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json, quiet_native_logs
from mobilenet_sep.export.formats import DEFAULT_OPSET, FORMATS, MAX_TOP1_DROP, MIN_AGREEMENT, QUANTIZATIONS
from mobilenet_sep.utils.files import check_output_path


def add_parser(commands):
    parser = commands.add_parser("export", help="export to ONNX, TFLite or .keras, verified against the Keras model")
    parser.add_argument("model", help="a zoo name (see `mobilenet-sep zoo`) or a .keras file")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx, tflite or keras")
    parser.add_argument(
        "--fuse", action="store_true", help="keras only: BatchNorm folded into the convolutions, for inference"
    )
    parser.add_argument(
        "--quantize", default="none", choices=QUANTIZATIONS, help="TFLite only: none (fp32), float16, dynamic, int8"
    )
    parser.add_argument("--int8-io", action="store_true", help="with --quantize int8: int8 input and output tensors")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="dataset (e.g. digits): its test split checks the file (top-1 agreement, accuracy), its train split "
        "calibrates int8 unless --calibration-data",
    )
    parser.add_argument(
        "--calibration-data", metavar="SPEC", help="with --quantize int8: calibrate on this dataset's train split instead"
    )
    parser.add_argument(
        "--max-top1-drop",
        type=float,
        default=MAX_TOP1_DROP,
        metavar="POINTS",
        help=f"quantized files: most top-1 points lost on the --data test split (default {MAX_TOP1_DROP:g})",
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=MIN_AGREEMENT,
        metavar="SHARE",
        help=f"quantized files: least top-1 agreement with Keras, 0 to 1 (default {MIN_AGREEMENT:g})",
    )
    parser.add_argument("--out", metavar="PATH", help="output file (default: MODEL_NAME[_QUANTIZE][_fused].FORMAT)")
    parser.add_argument("--force", action="store_true", help="write the file even if it fails its check (its JSON says so)")
    options.add_json(parser, "a table (the metadata)")
    parser.set_defaults(run=run)


def run(args, console):
    import_tensorflow()
    from mobilenet_sep import zoo
    from mobilenet_sep.export.exporter import check_arguments, default_output_path, export_data, export_model

    bounds = {"max_top1_drop": args.max_top1_drop, "min_agreement": args.min_agreement}
    calibrate = args.quantize == "int8"
    if args.calibration_data and not calibrate:
        raise UsageError(
            f"--calibration-data calibrates int8 (--quantize int8). Received: calibration_data={args.calibration_data!r}"
        )
    has_data = bool(args.data or args.calibration_data)
    check_arguments(args.format, args.quantize, args.int8_io, has_calibration=has_data, **bounds, fuse=args.fuse)
    if args.out is not None:
        check_output_path(args.out)  # fail before the slow part

    model = zoo.load_model(args.model)
    out = args.out or default_output_path(model, args.format, args.quantize, args.fuse)
    check_output_path(out)
    calibration, evaluation, description = (
        export_data(args.data, model, calibrate=calibrate, calibration_spec=args.calibration_data)
        if has_data
        else (None, None, None)
    )
    with console.status(f"exporting {model.name} to {out}"), quiet_native_logs():
        result = export_model(
            model,
            out,
            args.format,
            quantization=args.quantize,
            int8_io=args.int8_io,
            opset=args.opset,
            representative_images=calibration,
            evaluation=evaluation,
            **bounds,
            fuse=args.fuse,
            force=args.force,
            source=args.model,
            data_description=description,
        )
    if args.json:
        print_json(console, {"path": result.path, "metadata_path": result.metadata_path, **result.metadata})
        return
    console.print(_table(result))
    if not result.verification.passed:
        console.print(f"warning: written despite failing its check: {'; '.join(result.verification.problems)}")


def _table(result):
    verification = result.verification
    table = Table(
        title=f"{os.path.basename(result.path)}: {result.format}, quantization {result.quantization}", show_header=False
    )
    table.add_column("", no_wrap=True)
    table.add_column("")
    table.add_row("file", f"{result.path} ({result.file_bytes / 1e6:.2f} MB)")
    table.add_row("metadata", result.metadata_path)
    tolerance = f" (tolerance {verification.tolerance:g})" if verification.tolerance is not None else ""
    table.add_row(
        "relative error", f"{verification.relative_error:.2e} on {verification.random_inputs} random inputs{tolerance}"
    )
    where = f"{verification.evaluation_examples} test examples" if verification.evaluation_examples else "random inputs"
    table.add_row("top-1 agreement", f"{100 * verification.top1_agreement:.2f} % on {where}")
    if verification.keras_top1 is not None:
        table.add_row(
            "top-1 accuracy",
            f"Keras {100 * verification.keras_top1:.2f} %, exported {100 * verification.exported_top1:.2f} % "
            f"(delta {verification.top1_delta:+.2f} points)",
        )
    if verification.accuracy_bounds is not None:
        bounds = verification.accuracy_bounds
        drop = "no bound" if bounds.max_top1_drop is None else f"at most {bounds.max_top1_drop:g} points"
        table.add_row("bounds", f"top-1 drop {drop}, agreement at least {100 * bounds.min_agreement:.0f} %")
    ops = result.metadata["graph"]["ops"]
    table.add_row("ops", ", ".join(f"{name} x{count}" for name, count in sorted(ops.items(), key=lambda op: -op[1])))
    fusion = result.metadata.get("fusion")
    if fusion:
        unfolded = ", ".join(fusion["unfolded"]) or "none"
        table.add_row("fused", f"{len(fusion['folded'])} BatchNorm layers folded; left as they were: {unfolded}")
    table.add_row("check", "passed" if verification.passed else "FAILED: " + "; ".join(verification.problems))
    return table
