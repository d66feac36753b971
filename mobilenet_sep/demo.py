"""The whole job in one call, offline: train, evaluate, profile, export, verify, benchmark, compare, report.

`run_demo(output_dir)` trains the embedded-default recipe (`training/digits.toml`: real 8x8
digits that ship with scikit-learn), evaluates the model, profiles it and its fair twin (the
standard-conv MobileNet with the very same input, head, output stride and every other
argument: `zoo.twin`), exports ONNX and TFLite (fp32 and full int8) and verifies each file
against Keras (the int8 file is held to the accuracy bounds every quantized export is: refused,
not written, when it misses them), times the files, measures the standard-vs-separable speed-up
on every runtime in alternating rounds beside the predicted one, times both layer by layer against
this machine's ceilings (`speed.per_layer`: roofline and per-layer plots), and writes `report.md`
with its PNG plots into `output_dir`. Rerunning it on the same folder resumes the training from its last
checkpoint.
"""

import dataclasses
import os
import time

from mobilenet_sep import zoo
from mobilenet_sep.data import DataOptions, load_dataset
from mobilenet_sep.export.exporter import export_data, export_model
from mobilenet_sep.export.verify import ExportError, ExportResult, Verification
from mobilenet_sep.profiler import Profile, profile
from mobilenet_sep.profiler.render import to_png as profile_plot
from mobilenet_sep.speed import compare, measure
from mobilenet_sep.speed.per_layer import PerLayerComparison, compare_per_layer
from mobilenet_sep.speed.per_layer_render import layers_plot, roofline_plot, summary_rows
from mobilenet_sep.speed.render import comparison_plot, spread_text
from mobilenet_sep.speed.runtimes import COMPARE_RUNTIMES
from mobilenet_sep.speed.stats import Spread
from mobilenet_sep.train.engine import train
from mobilenet_sep.train.evaluate import evaluate
from mobilenet_sep.train.recipe import load_recipe
from mobilenet_sep.train.render import plot_confusion
from mobilenet_sep.utils.files import write_atomically

RECIPE = "digits"
EXPORTS = (("onnx", "none", "model.onnx"), ("tflite", "none", "model.tflite"), ("tflite", "int8", "model_int8.tflite"))
"""(format, quantization, file name) of each exported file."""
PLOTS = {
    "confusion": "confusion.png",
    "separable": "profile_separable.png",
    "standard": "profile_standard.png",
    "compare": "compare.png",
    "roofline": "per_layer_roofline.png",
    "layers": "per_layer_layers.png",
}
TRAIN_FIGURES = ("top1", "best_top1", "epochs", "train_examples", "test_examples", "wall_seconds", "images_per_second")
"""What the result keeps of the training run's metrics.json."""


class DemoProgress:
    """What the demo reports: `stage` before each step, `detail` within one; `training` gets the engine's reports."""

    training = None

    def stage(self, message):
        """Called before each step of the demo."""

    def detail(self, message):
        """Called within a long step (which runtime is being timed, ...)."""


@dataclasses.dataclass(frozen=True)
class DemoExport:
    """One file the demo exported, or that its check refused (`result` and `timing` None, `refusal` the reason)."""

    name: str
    format: str
    quantization: str
    verification: Verification
    result: ExportResult | None = None
    timing: measure.Timing | None = None
    refusal: str = ""

    def accuracy_text(self) -> str:
        check = self.verification
        exported = "n/a" if check.exported_top1 is None else f"{100 * check.exported_top1:.2f} %"
        delta = "" if check.top1_delta is None else f"{check.top1_delta:+.2f} pts, "
        text = f"{exported} ({delta}{100 * check.top1_agreement:.1f} % agree)"
        return text if self.result is not None else f"refused, not written: {text}"

    def to_dict(self) -> dict:
        return {
            "file": self.name,
            "format": self.format,
            "quantization": self.quantization,
            "bytes": None if self.result is None else self.result.file_bytes,
            "verification": self.verification.to_dict(),
            "timing": None if self.timing is None else self.timing.to_dict(),
            "refusal": self.refusal,
        }


@dataclasses.dataclass
class DemoResult:
    """Everything the demo measured; `summary()` is its one table, `to_dict()` its figures, `report_path` the report."""

    output_dir: str
    train_metrics: dict
    evaluation: dict
    separable: Profile  # of the trained model
    standard: Profile  # of its fair twin
    exports: list  # a DemoExport per file of EXPORTS
    comparison: compare.Comparison
    wall_seconds: float
    report_path: str = ""
    per_layer: PerLayerComparison | None = None  # both models layer by layer against the ceilings

    def summary(self) -> list[tuple[str, str, str]]:
        """(section, item, value) rows: accuracy, cost, predicted vs measured speed-up, files."""
        rows = [("accuracy", "Keras top-1 on the test digits", f"{100 * self.evaluation['top1']:.2f} %")]
        rows += [("accuracy", f"{item.name} top-1 (delta, agreement)", item.accuracy_text()) for item in self.exports]
        rows += [
            ("cost", "mult-adds separable / fair twin", f"{self.separable.mult_adds:,} / {self.standard.mult_adds:,}"),
            ("cost", "parameters separable / fair twin", f"{self.separable.params:,} / {self.standard.params:,}"),
            ("speed-up", "predicted (mult-adds)", f"{self.comparison.predicted_speedup:.2f}x"),
        ]
        for ratio in self.comparison.ratios:
            separable_ms, standard_ms = ratio.milliseconds()
            where = f"batch {ratio.separable.batch_size}, {ratio.separable.threads} threads"
            times = f"twin {spread_text(standard_ms)} ms / model {spread_text(separable_ms)} ms"
            rows.append(("speed-up", f"measured on {ratio.runtime} ({where})", f"{ratio.speedup.describe()}; {times}"))
        rows += summary_rows(self.per_layer) if self.per_layer is not None else []
        rows += [("files", item.name, _file_text(item)) for item in self.exports]
        rows.append(("run", "wall time", f"{self.wall_seconds:.0f} s"))
        return rows

    def to_dict(self) -> dict:
        """The figures, JSON-ready: what `--record` stores and README's demo table is rendered from."""
        return {
            "model": self.separable.model_name,
            "twin": self.standard.model_name,
            "train": {key: self.train_metrics[key] for key in TRAIN_FIGURES},
            "keras_top1": self.evaluation["top1"],
            "exports": [item.to_dict() for item in self.exports],
            "comparison": self.comparison.to_dict(),
            "per_layer": None if self.per_layer is None else self.per_layer.to_dict(),
            "wall_seconds": self.wall_seconds,
            "summary": [list(row) for row in self.summary()],
        }

    def markdown(self) -> str:
        """report.md: the summary table, then the plots."""
        lines = [
            "# mobilenet-sep demo",
            "",
            f"Model `{self.separable.model_name}` trained on the embedded digits "
            f"({self.train_metrics['train_examples']:,} training, {self.train_metrics['test_examples']:,} test "
            f"images, {self.train_metrics['epochs']} epochs), compared with its fair twin "
            f"`{self.standard.model_name}`: the same network with every separable block a full 3x3 convolution, "
            "the same input, classifier and output stride.",
            "",
            "| section | what | value |",
            "|---|---|---|",
            *(f"| {section} | {item} | {value} |" for section, item, value in self.summary()),
            "",
            "Predicted speed-up is the ratio of exact multiply-adds. Measured is the twin's time over the model's, "
            "both timed in alternating rounds on each runtime: the median of the per-round ratios with its 95 % "
            "interval (\"no measurable difference\" where the interval holds 1.0); times are medians with their "
            "25th-75th percentiles.",
            "",
            f"![confusion matrix]({PLOTS['confusion']})",
            "",
            f"![predicted vs measured speed-up]({PLOTS['compare']})",
            "",
            f"![each layer against this machine's roofline]({PLOTS['roofline']})",
            "",
            f"![measured against roofline time, per layer]({PLOTS['layers']})",
            "",
            f"![separable model, per layer]({PLOTS['separable']})",
            "",
            f"![standard-conv twin, per layer]({PLOTS['standard']})",
            "",
        ]
        return "\n".join(lines)


def _file_text(item):
    if item.result is None:
        return f"not written: {item.refusal}"
    spread = spread_text(Spread.of(item.timing.seconds).scaled(1e3))
    return (
        f"{item.result.file_bytes / 1e6:.2f} MB, {spread} ms at batch 1 ({item.timing.runtime}, "
        f"{item.timing.threads} threads), relative error {item.verification.relative_error:.1e} on random inputs"
    )


def _export_all(model, dataset, source, path, repeats, progress):
    """Each file of EXPORTS, verified (and timed) or refused by its check: a list of DemoExport."""
    calibration, evaluation_set, description = export_data(dataset, model)
    exported = []
    for format, quantization, name in EXPORTS:
        progress.stage(f"exporting and verifying {name}")
        try:
            result = export_model(
                model,
                path(name),
                format,
                quantization=quantization,
                representative_images=calibration if quantization == "int8" else None,
                evaluation=evaluation_set,
                source=source,
                data_description=description,
            )
        except ExportError as error:
            if quantization == "none":  # a float file that fails is a bug, not a figure
                raise
            exported.append(DemoExport(name, format, quantization, error.verification, refusal=str(error)))
            continue
        progress.stage(f"timing {name}")
        (timing,) = measure.measure_file(result.path, repeats=repeats, progress=progress.detail)
        exported.append(DemoExport(name, format, quantization, result.verification, result, timing))
    return exported


def run_demo(output_dir, *, epochs=None, repeats=30, progress=None) -> DemoResult:
    """Run the whole job into `output_dir` and return a DemoResult (report.md written there).

    `epochs` overrides the recipe's (a short run for a quick look); `repeats` is the number of
    timed runs per file and of alternating rounds per runtime.
    """
    progress = progress or DemoProgress()
    started = time.perf_counter()
    output_dir = os.path.abspath(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)

    def path(name):
        return os.path.join(output_dir, name)

    recipe = load_recipe(RECIPE, [] if epochs is None else [f"train.epochs={epochs}"])
    progress.stage("training the digits recipe")
    trained = train(recipe, path("train"), progress=progress.training)
    model = zoo.load_model(trained.final_model)

    progress.stage("evaluating on the held-out digits")
    options = DataOptions("test", tuple(model.input_shape[1:]), 64)
    evaluation = evaluate(model, load_dataset(recipe["data"]["dataset"], options))
    plot_confusion(evaluation, path(PLOTS["confusion"]), title=f"{model.name} on the test digits")

    progress.stage("profiling the model and its fair twin")
    twin = zoo.twin(model)
    separable, standard = profile(model), profile(twin)
    profile_plot(separable, path(PLOTS["separable"]))
    profile_plot(standard, path(PLOTS["standard"]))

    exports = _export_all(model, recipe["data"]["dataset"], trained.final_model, path, repeats, progress)

    progress.stage("timing the model against its twin on every runtime, in alternating rounds")
    comparison = compare.compare_models(
        model, twin, subject=model.name, runtimes=COMPARE_RUNTIMES, repeats=repeats, progress=progress.detail
    )
    comparison_plot(comparison, path(PLOTS["compare"]))

    progress.stage("timing both layer by layer against this machine's ceilings")
    layers = compare_per_layer(model, twin, subject=model.name, repeats=repeats, progress=progress.detail)
    roofline_plot(layers, path(PLOTS["roofline"]))
    layers_plot(layers, path(PLOTS["layers"]))

    result = DemoResult(
        output_dir,
        trained.metrics,
        evaluation,
        separable,
        standard,
        exports,
        comparison,
        wall_seconds=time.perf_counter() - started,
        report_path=path("report.md"),
        per_layer=layers,
    )
    write_atomically({result.report_path: result.markdown()})
    return result
