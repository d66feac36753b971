"""`mobilenet-sep export MODEL --format onnx|tflite [--quantize ...] [--data SPEC] [--out PATH]`: verified files."""

import os

from rich.table import Table

from mobilenet_sep.cli.common import UsageError, import_tensorflow, print_json, quiet_native_logs
from mobilenet_sep.export import DEFAULT_OPSET, FORMATS, QUANTIZATIONS


def add_parser(commands):
    parser = commands.add_parser("export", help="export to ONNX or TFLite, verified against the Keras model")
    parser.add_argument("model", help="a zoo name (see `mobilenet-sep zoo`) or a .keras file")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx or tflite")
    parser.add_argument(
        "--quantize", default="none", choices=QUANTIZATIONS, help="TFLite only: none (fp32), float16, dynamic, int8"
    )
    parser.add_argument("--int8-io", action="store_true", help="with --quantize int8: int8 input and output tensors")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="dataset (e.g. digits): its train split calibrates int8, its test split measures top-1 agreement",
    )
    parser.add_argument("--out", metavar="PATH", help="output file (default: MODEL_NAME[_QUANTIZE].onnx|.tflite)")
    parser.add_argument("--force", action="store_true", help="write the file even if it fails its check")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON instead of a table")
    parser.set_defaults(run=run)


def _check_arguments(args):
    if args.format == "onnx" and (args.quantize != "none" or args.int8_io):
        raise UsageError(f"--quantize and --int8-io apply to --format tflite. Received: quantize={args.quantize!r}")
    if args.int8_io and args.quantize != "int8":
        raise UsageError(f"--int8-io needs --quantize int8. Received: quantize={args.quantize!r}")
    if args.quantize == "int8" and not args.data:
        raise UsageError("--quantize int8 needs --data SPEC to calibrate on (e.g. --data digits). Received: data=None")


def run(args, console):
    from mobilenet_sep.export import default_output_path, export_data, export_model
    from mobilenet_sep.files import check_output_path

    _check_arguments(args)
    if args.out is not None:
        check_output_path(args.out)  # fail before the slow part
    import_tensorflow()
    from mobilenet_sep import zoo

    model = zoo.load_model(args.model)
    out = args.out or default_output_path(model, args.format, args.quantize)
    check_output_path(out)
    calibration, evaluation, description = (
        export_data(args.data, model, calibrate=args.quantize == "int8") if args.data else (None, None, None)
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
    ops = result.metadata["graph"]["ops"]
    table.add_row("ops", ", ".join(f"{name} x{count}" for name, count in sorted(ops.items(), key=lambda op: -op[1])))
    table.add_row("check", "passed" if verification.passed else "FAILED: " + "; ".join(verification.problems))
    return table
