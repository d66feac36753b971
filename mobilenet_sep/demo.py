"""The whole job in one call, offline: train, evaluate, profile, export, verify, benchmark, compare, report.

`run_demo(output_dir)` trains the embedded-default recipe (`training/digits.toml`: real 8x8
digits that ship with scikit-learn), evaluates the model, profiles it and its standard-conv twin,
exports ONNX and TFLite (fp32 and full int8) and verifies each file against Keras, times the
files, measures the standard-vs-separable speed-up on every runtime beside the predicted one, and
writes `report.md` with its PNG plots into `output_dir`. Rerunning it on the same folder resumes
the training from its last checkpoint.
"""

import dataclasses
import os
import time

from mobilenet_sep import compare, export, measure, recipe, train, zoo
from mobilenet_sep.data import DataOptions, load_dataset
from mobilenet_sep.evaluate import evaluate, plot_confusion
from mobilenet_sep.files import write_atomically
from mobilenet_sep.profiler import profile

RECIPE = "digits"
EXPORTS = (("onnx", "none", "model.onnx"), ("tflite", "none", "model.tflite"), ("tflite", "int8", "model_int8.tflite"))
"""(format, quantization, file name) of each exported file."""
PLOTS = {
    "confusion": "confusion.png",
    "separable": "profile_separable.png",
    "standard": "profile_standard.png",
    "compare": "compare.png",
}


class DemoProgress:
    """What the demo reports: `stage` before each step, `detail` within one; `training` gets the engine's reports."""

    training = None

    def stage(self, message):
        """Called before each step of the demo."""

    def detail(self, message):
        """Called within a long step (which runtime is being timed, ...)."""


@dataclasses.dataclass
class DemoResult:
    """Everything the demo measured; `summary()` is its one table, `report_path` the markdown report."""

    output_dir: str
    train_metrics: dict
    evaluation: dict
    separable: object  # Profile of the trained model
    standard: object  # Profile of its standard-conv twin
    exports: list  # ExportResult of each file in EXPORTS
    file_timings: list  # Timing of each exported file, batch 1
    comparison: object  # compare.Comparison
    wall_seconds: float
    report_path: str = ""

    def summary(self):
        """(section, item, value) rows: accuracy, cost, predicted vs measured speed-up, files."""
        rows = [
            ("accuracy", "Keras top-1 on the test digits", f"{100 * self.evaluation['top1']:.2f} %"),
        ]
        for result in self.exports:
            check = result.verification
            exported = check.exported_top1 if check.exported_top1 is not None else float("nan")
            rows.append(
                (
                    "accuracy",
                    f"{os.path.basename(result.path)} top-1 (delta, agreement)",
                    f"{100 * exported:.2f} % ({check.top1_delta:+.2f} pts, {100 * check.top1_agreement:.1f} % agree)",
                )
            )
        rows += [
            (
                "cost",
                "mult-adds separable / standard twin",
                f"{self.separable.mult_adds:,} / {self.standard.mult_adds:,}",
            ),
            ("cost", "parameters separable / standard twin", f"{self.separable.params:,} / {self.standard.params:,}"),
            ("speed-up", "predicted (mult-adds)", f"{self.comparison.predicted_speedup:.2f}x"),
        ]
        for ratio in self.comparison.ratios:
            rows.append(
                (
                    "speed-up",
                    f"measured on {ratio.runtime} (batch {ratio.separable.batch_size}, {ratio.separable.threads} threads)",
                    f"{ratio.speedup:.2f}x ({1e3 * ratio.standard.median_s:.2f} / {1e3 * ratio.separable.median_s:.2f} ms)",
                )
            )
        for result, timing in zip(self.exports, self.file_timings, strict=True):
            rows.append(
                (
                    "files",
                    os.path.basename(result.path),
                    f"{result.file_bytes / 1e6:.2f} MB, {1e3 * timing.median_s:.2f} ms at batch 1 "
                    f"({timing.runtime}, {timing.threads} threads), relative error {result.verification.relative_error:.1e} "
                    "on random inputs",
                )
            )
        rows.append(("run", "wall time", f"{self.wall_seconds:.0f} s"))
        return rows

    def markdown(self):
        """report.md: the summary table, then the plots."""
        lines = [
            "# mobilenet-sep demo",
            "",
            f"Model `{self.separable.model_name}` trained on the embedded digits "
            f"({self.train_metrics['train_examples']:,} training, {self.train_metrics['test_examples']:,} test "
            f"images, {self.train_metrics['epochs']} epochs), compared with its standard-conv twin "
            f"`{self.standard.model_name}`.",
            "",
            "| section | what | value |",
            "|---|---|---|",
            *(f"| {section} | {item} | {value} |" for section, item, value in self.summary()),
            "",
            "Predicted speed-up is the ratio of exact multiply-adds; measured is the ratio of median "
            "times, the twin's over the separable model's, timed one after the other on each runtime.",
            "",
            f"![confusion matrix]({PLOTS['confusion']})",
            "",
            f"![predicted vs measured speed-up]({PLOTS['compare']})",
            "",
            f"![separable model, per layer]({PLOTS['separable']})",
            "",
            f"![standard-conv twin, per layer]({PLOTS['standard']})",
            "",
        ]
        return "\n".join(lines)


def _twin(trained_recipe):
    """The standard-conv twin of the recipe's model, same overrides (untrained: it is only timed and counted)."""
    twin_recipe = {**trained_recipe, "model": {**trained_recipe["model"]}}
    twin_recipe["model"]["name"] = compare.twin_names(trained_recipe["model"]["name"])[1]
    return train.model_from_recipe(twin_recipe)


def run_demo(output_dir, *, epochs=None, repeats=30, progress=None):
    """Run the whole job into `output_dir` and return a DemoResult (report.md written there).

    `epochs` overrides the recipe's (a short run for a quick look); `repeats` is the number of
    timed runs per figure.
    """
    progress = progress or DemoProgress()
    started = time.perf_counter()
    output_dir = os.path.abspath(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)

    def path(name):
        return os.path.join(output_dir, name)

    overrides = [] if epochs is None else [f"train.epochs={epochs}"]
    trained_recipe = recipe.load_recipe(RECIPE, overrides)

    progress.stage("training the digits recipe")
    trained = train.train(trained_recipe, path("train"), progress=progress.training)
    model = zoo.load_model(trained.final_model)

    progress.stage("evaluating on the held-out digits")
    options = DataOptions("test", tuple(model.input_shape[1:]), 64)
    evaluation = evaluate(model, load_dataset(trained_recipe["data"]["dataset"], options))
    plot_confusion(evaluation, path(PLOTS["confusion"]), title=f"{model.name} on the test digits")

    progress.stage("profiling the model and its standard-conv twin")
    twin = _twin(trained_recipe)
    separable, standard = profile(model), profile(twin)
    separable.plot(path(PLOTS["separable"]))
    standard.plot(path(PLOTS["standard"]))

    calibration, evaluation_set, description = export.export_data(trained_recipe["data"]["dataset"], model)
    exports, file_timings = [], []
    for format, quantization, name in EXPORTS:
        progress.stage(f"exporting and verifying {name}")
        result = export.export_model(
            model,
            path(name),
            format,
            quantization=quantization,
            representative_images=calibration if quantization == "int8" else None,
            evaluation=evaluation_set,
            source=trained.final_model,
            data_description=description,
        )
        exports.append(result)
        progress.stage(f"timing {name}")
        file_timings += measure.measure_file(result.path, repeats=repeats, progress=progress.detail)

    progress.stage("timing the model against its twin on every runtime")
    comparison = compare.compare_models(
        model, twin, subject=model.name, runtimes=compare.DEFAULT_RUNTIMES, repeats=repeats, progress=progress.detail
    )
    comparison.plot(path(PLOTS["compare"]))

    result = DemoResult(
        output_dir,
        trained.metrics,
        evaluation,
        separable,
        standard,
        exports,
        file_timings,
        comparison,
        wall_seconds=time.perf_counter() - started,
        report_path=path("report.md"),
    )
    write_atomically({result.report_path: result.markdown()})
    return result
