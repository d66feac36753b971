"""Standard vs separable: exact predicted ratios, real timings per runtime, and the renderings."""

import json

import pytest

from mobilenet_sep import compare
from mobilenet_sep.cli import main
from mobilenet_sep.profiler import profile

FAST = {"repeats": 3, "budget_s": 0.5}


def test_layer_spec_parses_fields_and_defaults():
    spec = compare.LayerSpec.parse("12x12x3:k5:s1:valid:n256")
    assert spec == compare.LayerSpec(12, 12, 3, (5, 5), (1, 1), "valid", 256)
    assert str(spec) == "12x12x3:k5:s1:valid:n256"
    assert compare.LayerSpec.parse("32x24x8:n16") == compare.LayerSpec(32, 24, 8, (3, 3), (1, 1), "same", 16)
    assert compare.LayerSpec.parse("32x24x8:k3x5:s2x1:same:n16").kernel == (3, 5)
    assert str(compare.LayerSpec.parse("32x24x8:K3X5:S2X1:n16")) == "32x24x8:k3x5:s2x1:same:n16"


@pytest.mark.parametrize(
    "text,message",
    [
        ("0x12x3:k3:n8", "positive"),
        ("12x12x-3:k3:n8", "positive"),
        ("12x12x3:k3:n0", "positive"),
        ("12x12x3:k3:s0:n8", "positive"),
        ("4x12x3:k5:valid:n8", "larger than the valid-padded input"),
        ("12x12x3:k3", "needs the output filters"),
        ("12x12x3:q3:n8", "Unknown field 'q3'"),
        ("12x12:k3:n8", "starts with HxWxC"),
    ],
)
def test_bad_layer_specs_name_the_value(text, message):
    with pytest.raises(ValueError, match=f"{message}.*Received: layer='{text}'"):
        compare.LayerSpec.parse(text)


def test_classic_example_closed_form_equals_the_exact_count():
    """12x12x3, 5x5 valid, 256 filters: 53,952 / 1,228,800 = 1/256 + 1/25 exactly (no border effects)."""
    spec = compare.LayerSpec.parse("12x12x3:k5:s1:valid:n256")
    separable, standard = spec.models()
    assert profile(separable).mult_adds == 4_800 + 49_152
    assert profile(standard).mult_adds == 1_228_800
    assert profile(separable).mult_adds / profile(standard).mult_adds == pytest.approx(spec.closed_form, rel=1e-12)


def test_compare_layer_times_every_runtime_and_renders(tmp_path):
    result = compare.compare_layer("16x16x8:k3:s2:same:n32", runtimes=("tf", "tf-train", "onnx", "litert"), **FAST)
    assert result.predicted_speedup == pytest.approx(result.standard.mult_adds / result.separable.mult_adds)
    assert result.predicted_speedup == pytest.approx((9 * 8 * 32 * 64) / (9 * 8 * 64 + 8 * 32 * 64))
    assert [ratio.runtime for ratio in result.ratios] == ["tf", "tf-train", "onnx", "litert"]
    for ratio in result.ratios:
        assert ratio.separable.batch_size == ratio.standard.batch_size == 1
        assert len(ratio.separable.seconds) >= 3 and ratio.speedup > 0
        assert ratio.speedup == pytest.approx(ratio.standard.median_s / ratio.separable.median_s)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["closed_form_cost_ratio"] == pytest.approx(1 / 32 + 1 / 9)
    assert {row["runtime"] for row in data["runtimes"]} == {"tf", "tf-train", "onnx", "litert"}
    path = tmp_path / "compare.png"
    result.plot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["compare.png"]  # no temporary file left


def test_zoo_model_is_compared_with_its_twin():
    assert compare.twin_names("mobilenet_v1_0.25_128") == ("mobilenet_v1_0.25_128", "conv_mobilenet_v1_0.25_128")
    assert compare.twin_names("conv_mobilenet_v1_0.25_128") == ("mobilenet_v1_0.25_128", "conv_mobilenet_v1_0.25_128")
    with pytest.raises(ValueError, match="Received: name='mobilenet_v1_0.3_128'"):
        compare.twin_names("mobilenet_v1_0.3_128")
    result = compare.compare_zoo_model(
        "mobilenet_v1_0.25_128", {"input_shape": (64, 64, 3), "classes": 10}, runtimes=("tf",), **FAST
    )
    assert result.separable.model_name == "mobilenet_v1_0.25_64"
    assert result.standard.model_name == "conv_mobilenet_v1_0.25_64"
    assert result.predicted_speedup > 5  # 3x3 standard convs cost several times the separable blocks


def test_cli_compare_json_and_errors(capsys):
    code = main(["compare", "--layer", "12x12x3:k5:s1:valid:n16", "--runtimes", "tf,onnx", "--repeats", "3", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subject"] == "12x12x3:k5:s1:valid:n16"
    assert [row["runtime"] for row in data["runtimes"]] == ["tf", "onnx"]
    assert main(["compare", "--layer", "12x12x0:k5:n16"]) == 2
    assert "Received: layer='12x12x0:k5:n16'" in capsys.readouterr().err
    assert main(["compare", "--layer", "12x12x3:k5:n16", "--runtimes", "tf,cuda"]) == 2
    assert "Received: runtimes='tf,cuda'" in capsys.readouterr().err
    assert main(["compare", "mobilenet_v1_9_224"]) == 2
