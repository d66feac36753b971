"""Standard vs separable: exact predicted ratios, interleaved timings with their spread, and the renderings.

The statistics are checked on injected timings whose answer is known; real timings are checked for
their structure (rounds paired, intervals around their value), never for their size.
"""

import io
import json

import pytest
from rich.console import Console

from mobilenet_sep import zoo
from mobilenet_sep.cli import main
from mobilenet_sep.profiler import profile
from mobilenet_sep.speed import compare, measure, render

FAST = {"repeats": 3, "budget_s": 0.5}


def _timing(seconds, runtime="onnx", note=""):
    return measure.Timing(runtime, 1, 2, 3, tuple(seconds), note=note)


def _drifting(base, factor, rounds=20):
    """Per-round times of a machine that slows down 4x over the run: `factor` times `base`, round by round."""
    return [factor * base * (1 + 0.15 * round_) for round_ in range(rounds)]


def _text(renderable):
    console = Console(file=io.StringIO(), width=300)
    console.print(renderable)
    return console.file.getvalue()


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


def test_a_runtime_ratio_is_the_median_per_round_ratio_with_its_interval():
    """Known answer: the twin takes 3x the model's time in every round while the machine drifts 4x."""
    ratio = compare.RuntimeRatio("onnx", _timing(_drifting(0.002, 1)), _timing(_drifting(0.002, 3), note="n"))
    assert ratio.speedup.value == pytest.approx(3.0) and ratio.speedup.measurable
    assert (ratio.speedup.low, ratio.speedup.high) == pytest.approx((3.0, 3.0))
    separable_ms, standard_ms = ratio.milliseconds()
    assert separable_ms.median == pytest.approx(2 * (1 + 0.15 * 9.5))  # rounds 9 and 10 of 20, in ms
    assert standard_ms.p25 == pytest.approx(3 * 2 * (1 + 0.15 * 4.75)) and standard_ms.count == 20
    row = json.loads(json.dumps(ratio.to_dict()))
    assert row["measured_speedup"]["text"] == "3.00x (3.00-3.00)" and row["rounds"] == 20
    assert row["separable_ms"]["median"] == pytest.approx(separable_ms.median) and row["note"] == "n"
    # A ratio of medians would be the same here; drift that hits one subject more than the other is not.


def test_an_interval_that_holds_one_reads_no_measurable_difference():
    separable = _drifting(0.010, 1, rounds=9)
    standard = [time * factor for time, factor in zip(separable, [1.2, 0.9, 1.1, 0.8, 1.0, 1.3, 0.95, 1.05, 0.85])]
    ratio = compare.RuntimeRatio("litert", _timing(separable, "litert"), _timing(standard, "litert"))
    assert not ratio.speedup.measurable and ratio.speedup.low < 1 < ratio.speedup.high
    table = _text(render.comparison_table(_comparison((ratio,))))
    assert "no measurable difference (0.85-1.20)" in table


def _comparison(ratios):
    separable, standard = compare.LayerSpec.parse("8x8x4:k3:n8").models()
    return compare.Comparison("8x8x4:k3:s1:same:n8", profile(separable), profile(standard), tuple(ratios))


def test_compare_layer_times_both_models_in_alternating_rounds_and_renders(tmp_path, monkeypatch):
    calls = []
    interleave = measure.time_interleaved

    def recorded(runs, **options):
        calls.append((len(runs), options))
        return interleave(runs, **options)

    monkeypatch.setattr(measure, "time_interleaved", recorded)
    runtimes = ("tf", "tf-train", "onnx", "litert")
    result = compare.compare_layer("16x16x8:k3:s2:same:n32", runtimes=runtimes, warmup=2, **FAST)
    assert result.predicted_speedup == pytest.approx((9 * 8 * 32 * 64) / (9 * 8 * 64 + 8 * 32 * 64))
    assert calls == [(2, {"warmup": 2, "repeats": 3, "budget_s": 0.5})] * 4  # one interleaved pair per runtime
    assert [ratio.runtime for ratio in result.ratios] == list(runtimes)
    for ratio in result.ratios:
        assert len(ratio.separable.seconds) == len(ratio.standard.seconds) == 3  # round i of each, paired
        assert ratio.separable.warmup == ratio.standard.warmup == 2
        assert ratio.speedup.low <= ratio.speedup.value <= ratio.speedup.high
    data = json.loads(json.dumps(result.to_dict()))
    assert data["closed_form_cost_ratio"] == pytest.approx(1 / 32 + 1 / 9)
    for row in data["runtimes"]:
        assert set(row["separable_ms"]) == set(row["standard_ms"]) == {"median", "p25", "p75", "count"}
        assert row["separable_ms"]["p25"] <= row["separable_ms"]["median"] <= row["separable_ms"]["p75"]
        assert {"value", "low", "high", "measurable", "text"} <= set(row["measured_speedup"])
    path = tmp_path / "compare.png"
    render.comparison_plot(result, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["compare.png"]  # no temporary file left


def test_zoo_model_is_compared_with_its_fair_twin():
    assert zoo.twin_names("mobilenet_v1_0.25_128") == ("mobilenet_v1_0.25_128", "conv_mobilenet_v1_0.25_128")
    assert zoo.twin_names("conv_mobilenet_v1_0.25_128") == ("mobilenet_v1_0.25_128", "conv_mobilenet_v1_0.25_128")
    with pytest.raises(ValueError, match="Received: name='mobilenet_v1_0.3_128'"):
        zoo.twin_names("mobilenet_v1_0.3_128")
    overrides = {"input_shape": (64, 64, 3), "classes": 10, "output_stride": 16}
    result = compare.compare_with_twin("conv_mobilenet_v1_0.25_128", overrides, runtimes=("tf",), **FAST)
    assert result.separable.model_name == "mobilenet_v1_0.25_64"
    assert result.standard.model_name == "conv_mobilenet_v1_0.25_64"
    twin = zoo.create_model("conv_mobilenet_v1_0.25_128", **overrides)
    assert result.standard.mult_adds == profile(twin).mult_adds and result.standard.params == twin.count_params()
    assert result.standard.rows[-1].output_shape == result.separable.rows[-1].output_shape == (10,)


def test_a_saved_model_is_compared_with_its_own_twin(tmp_path):
    path = tmp_path / "digits_like.keras"
    zoo.create_model("mobilenet_v1_0.25_128", input_shape=(32, 32, 3), classes=10, output_stride=16).save(path)
    result = compare.compare_with_twin(str(path), runtimes=("tf",), **FAST)
    expected = zoo.create_model("conv_mobilenet_v1_0.25_128", input_shape=(32, 32, 3), classes=10, output_stride=16)
    assert result.standard.mult_adds == profile(expected).mult_adds
    with pytest.raises(ValueError, match="Received: classes=3"):
        compare.compare_with_twin(str(path), {"classes": 3})


def test_cli_compare_json_record_and_errors(capsys, tmp_path):
    record = tmp_path / "compare.json"
    arguments = ["compare", "--layer", "12x12x3:k5:s1:valid:n16", "--runtimes", "tf,onnx", "--repeats", "3"]
    assert main([*arguments, "--json", "--record", str(record)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subject"] == "12x12x3:k5:s1:valid:n16"
    assert [row["runtime"] for row in data["runtimes"]] == ["tf", "onnx"]
    for row in data["runtimes"]:
        assert row["rounds"] == 3 and row["separable_ms"]["count"] == row["standard_ms"]["count"] == 3
        interval = row["measured_speedup"]
        assert interval["low"] <= interval["value"] <= interval["high"]
    stored = json.loads(record.read_text())
    assert stored["figures"]["runtimes"] == data["runtimes"]
    assert stored["command"] == "mobilenet-sep " + " ".join([*arguments, "--json", "--record", str(record)])
    assert stored["short_run"].startswith("3 rounds") and stored["machine"]["cores"] >= 1
    assert stored["packages"]["tensorflow"] and stored["machine"]["cpu"]
    assert main(["compare", "--layer", "12x12x0:k5:n16"]) == 2
    assert "Received: layer='12x12x0:k5:n16'" in capsys.readouterr().err
    assert main(["compare", "--layer", "12x12x3:k5:n16", "--runtimes", "tf,cuda"]) == 2
    assert "Received: runtimes='tf,cuda'" in capsys.readouterr().err
    assert main(["compare", "mobilenet_v1_9_224"]) == 2
