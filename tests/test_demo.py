"""`mobilenet-sep demo`: the whole job, end to end, in its short mode; every output exists and parses."""

import json
import re
import subprocess
import sys

import pytest

from mobilenet_sep.demo import EXPORTS, PLOTS

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
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
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads(result.stdout), result.stderr


def test_demo_writes_report_plots_models_and_metadata(demo):
    out, summary, _ = demo
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
    _, summary, stderr = demo
    rows = {(section, item): value for section, item, value in summary["summary"]}
    sections = [section for section, _, _ in summary["summary"]]
    assert set(sections) == {"accuracy", "cost", "speed-up", "files", "run"}
    top1 = float(re.match(r"([\d.]+) %", rows["accuracy", "Keras top-1 on the test digits"])[1])
    assert top1 > 30  # two epochs of real digits: far above the 10 % of chance
    predicted = float(rows["speed-up", "predicted (mult-adds)"].rstrip("x"))
    assert 5 < predicted < 10  # 3x3 standard convolutions against separable blocks
    measured = [item for section, item in rows if section == "speed-up" and item.startswith("measured on")]
    assert [item.split()[2] for item in measured] == ["tf", "tf-train", "onnx", "litert"]
    assert "> training the digits recipe" in stderr and "> timing the model against its twin" in stderr
