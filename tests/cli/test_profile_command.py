"""`mobilenet-sep profile`: table, JSON, CSV and plot from a zoo name or a .keras file; bad specs exit 2."""

import csv
import io
import json
import subprocess
import sys

import pytest

import mobilenet_sep
from mobilenet_sep.cli import main
from mobilenet_sep.profiler import profile


def test_table_ends_with_totals_shares_and_the_published_figures(capsys):
    assert main(["profile", "mobilenet_v1_1.0_160"]) == 0
    text = capsys.readouterr().out
    exact = profile(mobilenet_sep.create_model("mobilenet_v1_1.0_160"))
    for expected in ("conv_pw_13", f"{exact.mult_adds:,}", f"{exact.params:,}", "% mult-adds", "tf_slim", "290.68 M"):
        assert expected in text, expected
    assert text.index("by kind") > text.index("conv_preds") and text.index("published") > text.index("by kind")


def test_json_with_a_non_square_size_and_a_width_override(capsys):
    assert main(["profile", "mobilenet_v1_1.0_224", "--size", "160x128", "--alpha", "0.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = profile(mobilenet_sep.MobileNetV1(alpha=0.5, input_shape=(160, 128, 3)))
    assert data["mult_adds"] == expected.mult_adds and data["params"] == expected.params
    assert data["input_shape"] == [160, 128, 3] and data["layers"][0]["output_shape"] == [80, 64, 16]
    assert data["published"] == []  # the printed figures are for 1.0 at 224, not this config


def test_json_lists_the_published_figures_of_an_unchanged_entry(capsys):
    assert main(["profile", "mobilenet_v1_0.25_128", "--size", "128", "--json"]) == 0
    published = json.loads(capsys.readouterr().out)["published"]
    assert [(figure["source"], figure["printed_mult_adds_millions"], figure["agrees"]) for figure in published] == [
        ("tf_slim", 14, True)
    ]


def test_csv_and_plot_from_a_keras_file(tmp_path, capsys):
    path = tmp_path / "small.keras"
    model = mobilenet_sep.create_model("mobilenet_v1_0.25_128", classes=10)
    model.save(path)
    plot = tmp_path / "layers.png"
    assert main(["profile", str(path), "--csv", "--plot", str(plot)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sum(int(row["mult_adds"]) for row in rows if row["in_total"] == "True") == profile(model).mult_adds
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--size", "0x128"], "`input_shape` height and width must be >= 32. Received: input_shape=(0, 128, 3)"),
        (["--size", "160by128"], "--size must be HxW or S with integers, e.g. 160x128. Received: size='160by128'"),
        (["--size=-5x4"], "--size must be HxW or S with integers, e.g. 160x128. Received: size='-5x4'"),
        (["--alpha", "0"], "`alpha` must be in (0, 16]. Received: alpha=0.0"),
        (["--alpha=-1"], "`alpha` must be in (0, 16]. Received: alpha=-1.0"),
        (["--alpha=inf"], "`alpha` must be a finite number. Received: alpha=inf"),
    ],
)
def test_bad_specs_are_one_line_errors_with_exit_code_2(arguments, message, capsys):
    assert main(["profile", "mobilenet_v1_1.0_224", *arguments]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_a_size_on_the_point_cloud_model_is_a_one_line_error(capsys):
    assert main(["profile", "pointwise_cnn", "--size", "64"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --size applies to image models; this one takes inputs of shape (2048, 3). Received: size='64'"
    )


def test_errors_from_the_shell():
    def run(*arguments):
        command = [sys.executable, "-m", "mobilenet_sep.cli", "profile", *arguments]
        return subprocess.run(command, capture_output=True, text=True)

    result = run("mobilenet_v1_1.0_224", "--size", "12x")
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: --size must be HxW or S with integers, e.g. 160x128. Received: size='12x'"
    )
    result = run("mobilenet_v1_1.0_224", "--json", "--csv")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_overrides_on_a_keras_file_and_unknown_names_are_usage_errors(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "model.keras"), "--alpha", "0.5"]) == 2
    assert "Overrides apply to zoo names" in capsys.readouterr().err
    assert main(["profile", "mobilenet_v1_1.0_225"]) == 2
    assert "Did you mean" in capsys.readouterr().err
