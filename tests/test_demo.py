"""`mobilenet-sep demo`: the whole job, end to end, in its short mode; every output exists and parses.

The figures that do not depend on training or timing are exact: the trained model's and its fair
twin's mult-adds. Timings are checked for their form (an interval, or no measurable difference).
"""

import json
import re
import subprocess
import sys

import pytest

from mobilenet_sep.demo import EXPORTS, PLOTS

PNG = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.slow  # training and every runtime, in a subprocess


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    record = out.parent / f"{out.name}_record.json"
    command = [
        sys.executable,
        "-m",
        "mobilenet_sep.cli",
        "demo",
        "--quick",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--json",
        "--record",
        str(record),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads(result.stdout), result.stderr, json.loads(record.read_text())


def test_demo_writes_report_plots_models_and_metadata(demo):
    out, summary, _, _ = demo
    assert summary["report"] == str(out / "report.md")
    report = (out / "report.md").read_text()
    for name in PLOTS.values():
        assert f"]({name})" in report
        assert (out / name).read_bytes()[:8] == PNG
    for format, quantization, name in EXPORTS:
        metadata = json.loads((out / f"{name}.json").read_text())
        assert metadata["format"] == format and metadata["quantization"] == quantization
        assert metadata["verification"]["passed"]
        assert metadata["file"] == name and (out / name).stat().st_size == metadata["bytes"]
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    assert metrics["complete"] and metrics["epochs"] == 2
    assert not [path.name for path in out.rglob(".tmp-*")]  # every write was atomic


def test_demo_summary_covers_accuracy_cost_speedups_and_files(demo):
    _, summary, stderr, _ = demo
    rows = {(section, item): value for section, item, value in summary["summary"]}
    sections = [section for section, _, _ in summary["summary"]]
    assert set(sections) == {"accuracy", "cost", "speed-up", "per layer", "files", "run"}
    per_layer = [item for section, item, _ in summary["summary"] if section == "per layer"]
    assert {item.split(":")[0] for item in per_layer} == {"tf", "onnx", "litert", "litert-int8"}
    top1 = float(re.match(r"([\d.]+) %", rows["accuracy", "Keras top-1 on the test digits"])[1])
    assert top1 > 30  # two epochs of real digits: far above the 10 % of chance
    # The fair twin: the trained model's 10-class head, 32x32 input and output stride 16 (issue 11).
    assert rows["cost", "mult-adds separable / fair twin"] == "4,246,016 / 35,505,152"
    assert rows["cost", "parameters separable / fair twin"] == "834,666 / 7,081,594"
    assert rows["speed-up", "predicted (mult-adds)"] == "8.36x"
    measured = {item: value for (section, item), value in rows.items() if item.startswith("measured on")}
    assert [item.split()[2] for item in measured] == ["tf", "tf-train", "onnx", "litert"]
    for value in measured.values():  # a ratio with its interval, or none: never a bare ratio
        assert re.match(r"(\d+\.\d\dx|no measurable difference) \(\d+\.\d\d-\d+\.\d\d\); twin ", value), value
    assert "> training the digits recipe" in stderr and "> timing the model against its twin" in stderr


def test_demo_record_holds_the_figures_with_what_made_them(demo):
    _, summary, _, record = demo
    assert record["command"].startswith("mobilenet-sep demo --quick --epochs 2")
    assert record["short_run"] == "2 epochs, 5 timed runs (a run of record has 30)"
    assert record["machine"]["cores"] >= 1 and record["machine"]["cpu"] and record["packages"]["keras"]
    figures = record["figures"]
    assert figures["summary"] == summary["summary"]
    assert (figures["model"], figures["twin"]) == ("mobilenet_v1_0.5_32", "conv_mobilenet_v1_0.5_32")
    comparison = figures["comparison"]
    assert (comparison["separable"]["mult_adds"], comparison["standard"]["mult_adds"]) == (4_246_016, 35_505_152)
    for row in comparison["runtimes"]:
        assert row["rounds"] == 5 and row["separable_ms"]["count"] == row["standard_ms"]["count"] == 5
    assert [item["file"] for item in figures["exports"]] == [name for _, _, name in EXPORTS]
    layers = figures["per_layer"]
    assert set(layers["per_layer"]) == set(layers["ceilings"]) == {"tf", "onnx", "litert", "litert-int8"}
    assert layers["separable"]["mult_adds"] == 4_246_016
    assert figures["train"]["epochs"] == 2 and figures["keras_top1"] == pytest.approx(figures["train"]["top1"])
