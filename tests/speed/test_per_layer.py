"""Per-layer cost against the roofline: the JSON schema, bytes by hand, counts equal to the profiler's, the 15 % rule.

Timed figures are never asserted: they depend on the machine. What is asserted is what the tool
computes from them (sums, ratios, the rule) and everything it counts.
"""

import csv
import io
import json

import pytest

from mobilenet_sep.cli import main
from mobilenet_sep.profiler import profile
from mobilenet_sep.speed import measure, per_layer, per_layer_render, stats
from mobilenet_sep.speed.ceilings import measure_ceilings
from mobilenet_sep.speed.layer_timing import BELOW_NOISE, LayerTime, ModelTimes, time_layers
from mobilenet_sep.speed.roofline import Ceilings, minimum_bytes
from mobilenet_sep.speed.runtimes import PER_LAYER_RUNTIMES

FAST = {"threads": 1, "warmup": 1, "repeats": 3, "budget_s": 0.5}
LAYER_KEYS = {"name", "kind", "mult_adds", "bytes", "intensity", "ms", "gflops", "gbps", "bound", "bound_ms", "status"}


def _ceilings(runtime):
    """Made-up ceilings: the schema and the roofline arithmetic do not depend on their values."""
    return Ceilings(runtime, stats.Spread(100.0, 90.0, 110.0, 3), stats.Spread(20.0, 18.0, 22.0, 3), "conv", "add")


FAKE_CEILINGS = {runtime: _ceilings(runtime) for runtime in PER_LAYER_RUNTIMES}


@pytest.fixture(scope="module")
def spec_result():
    return per_layer.per_layer_of_spec(
        "16x16x8:k3:s1:same:n16", runtimes=PER_LAYER_RUNTIMES, ceilings=FAKE_CEILINGS, **FAST
    )


def test_json_has_every_runtime_both_models_and_each_layer(spec_result, tmp_path):
    data = json.loads(json.dumps(spec_result.to_dict()))
    assert set(data["per_layer"]) == set(data["ceilings"]) == set(PER_LAYER_RUNTIMES)
    for runtime in PER_LAYER_RUNTIMES:
        assert {"gflops", "gbps"} <= set(data["ceilings"][runtime])
        assert data["methods"][runtime]
        for role, names in (("separable", {"depthwise", "pointwise"}), ("standard", {"standard"})):
            model = data["per_layer"][runtime][role]
            assert model["whole_model_ms"] > 0 and model["layers_ms"] > 0
            assert model["attribution"] == pytest.approx(model["layers_ms"] / model["whole_model_ms"])
            assert model["adds_up"] == (abs(model["attribution"] - 1) <= 0.15)
            rows = {row["name"]: row for row in model["layers"]}
            assert names <= set(rows) and all(set(row) >= LAYER_KEYS for row in rows.values())
            for name in names:
                row = rows[name]
                assert row["status"].startswith("timed") and row["bound"] in ("compute", "memory")
                assert row["intensity"] == pytest.approx(2 * row["mult_adds"] / row["bytes"])
                if row["ms"] > 0:
                    assert row["gflops"] == pytest.approx(2 * row["mult_adds"] / row["ms"] / 1e6)
                    assert row["gbps"] == pytest.approx(row["bytes"] / row["ms"] / 1e6)
                else:  # a cut no slower than the one before it: timed, with no rate
                    assert row["status"] == BELOW_NOISE and row["gflops"] is None and row["gbps"] is None
                compute, memory = 2 * row["mult_adds"] / 100e9, row["bytes"] / 20e9
                assert row["bound_ms"] == pytest.approx(1e3 * max(compute, memory))
                assert row["bound"] == ("compute" if compute >= memory else "memory")
        summary = data["summary"][runtime]["speedups"]
        assert summary["mult_adds"] == pytest.approx((9 * 8 * 16 * 256) / (9 * 8 * 256 + 8 * 16 * 256))
        assert summary["roofline"]["low"] <= summary["roofline"]["value"] <= summary["roofline"]["high"]
        assert summary["measured"]["rounds"] >= 3
    # int8 moves a quarter of the float bytes for the same count.
    depthwise = {
        rt: next(r for r in data["per_layer"][rt]["separable"]["layers"] if r["name"] == "depthwise")
        for rt in ("litert", "litert-int8")
    }
    assert depthwise["litert"]["bytes"] == 4 * depthwise["litert-int8"]["bytes"]
    assert data["closed_form_speedup"] == pytest.approx(1 / (1 / 16 + 1 / 9))


def test_tables_csv_and_plots(spec_result, tmp_path):
    from rich.console import Console

    console = Console(width=240, record=True, file=io.StringIO())
    console.print(per_layer_render.summary_table(spec_result))
    console.print(per_layer_render.kind_table(spec_result))
    console.print(per_layer_render.layer_table(spec_result.runtime("onnx"), "separable"))
    text = console.export_text()
    assert all(runtime in text for runtime in PER_LAYER_RUNTIMES) and "pointwise" in text and "memory" in text
    rows = per_layer_render.summary_rows(spec_result)
    assert len(rows) == 4 * len(PER_LAYER_RUNTIMES) and all(len(row) == 3 for row in rows)
    rows = list(csv.DictReader(io.StringIO(per_layer_render.csv_text(spec_result))))
    assert len(rows) == sum(len(r.separable.layers) + len(r.standard.layers) for r in spec_result.runtimes)
    assert {row["runtime"] for row in rows} == set(PER_LAYER_RUNTIMES)
    assert tuple(rows[0]) == per_layer_render.CSV_COLUMNS
    path = tmp_path / "roofline.png"
    per_layer_render.roofline_plot(spec_result, str(path))
    per_layer_render.layers_plot(spec_result, per_layer_render.layers_plot_path(str(path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roofline.png", "roofline_layers.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in tmp_path.iterdir())


def test_minimum_bytes_of_a_few_layers_by_hand(tiny):
    rows = {row.name: row for row in profile(tiny).rows}
    # conv1: 32x32x3 in, 16x16x8 out, a 3x3x3x8 kernel.
    assert minimum_bytes(rows["conv1"], 4) == 4 * (32 * 32 * 3 + 16 * 16 * 8 + 3 * 3 * 3 * 8) == 21_344
    assert minimum_bytes(rows["conv1"], 1) == 32 * 32 * 3 + 16 * 16 * 8 + 216 == 5_336
    # conv_dw_1: 16x16x8 in and out, a 3x3x8x1 kernel.
    assert minimum_bytes(rows["conv_dw_1"], 4) == 4 * (2 * 16 * 16 * 8 + 72) == 16_672
    # conv1_bn: in and out, and its four statistics per channel.
    assert minimum_bytes(rows["conv1_bn"], 4) == 4 * (2 * 16 * 16 * 8 + 4 * 8) == 16_512
    # conv_preds (dense): 1x1x256 in, 1x1x10 out, a 256x10 kernel and a 32-bit bias even in int8.
    assert minimum_bytes(rows["conv_preds"], 4) == 4 * (256 + 10 + 2560 + 10) == 11_344
    assert minimum_bytes(rows["conv_preds"], 1) == 256 + 10 + 2560 + 4 * 10 == 2_866


@pytest.mark.parametrize("runtime", ["tf", "onnx", "litert-int8"])
def test_every_row_keeps_the_profiler_s_count_and_none_is_dropped(tiny, runtime):
    (times,) = time_layers([tiny], runtime, **FAST)
    counted = profile(tiny).rows
    keras_rows = [row for row in times.layers if row.detail != "runtime"]
    assert [(row.name, row.mult_adds) for row in keras_rows] == [(row.name, row.mult_adds) for row in counted]
    statuses = {row.name: row.status for row in keras_rows}
    assert all(statuses[f"conv_{kind}_{block}"].startswith("timed") for kind in ("dw", "pw") for block in range(1, 14))
    assert statuses["dropout"] == "no op at run time" and not times.untimed
    if runtime == "tf":  # TensorFlow runs BatchNorm and ReLU6 as ops of their own
        assert statuses["conv_dw_5_bn"] == statuses["conv_pw_5_relu"] == "timed"
    else:  # folded and fused into the convolution
        assert (
            statuses["conv_dw_5_bn"] == "fused into conv_dw_5" and statuses["conv_pw_5_relu"] == "fused into conv_pw_5"
        )
    runtime_rows = [row for row in times.layers if row.detail == "runtime"]
    assert any(row.name.startswith("call (") for row in runtime_rows) and all(row.timed for row in runtime_rows)
    assert times.layers_ms == pytest.approx(sum(row.ms for row in times.layers if row.timed))


def _times(whole_seconds, row_seconds):
    timing = measure.Timing("onnx", 1, 1, 1, tuple(whole_seconds))
    rows = [
        LayerTime(f"l{index}", "pointwise", "pointwise", 10, 100, tuple(seconds), "timed")
        for index, seconds in enumerate(row_seconds)
    ]
    untimed = LayerTime("gone", "depthwise", "depthwise", 5, 50, (), "not timed: no op of the runtime names this layer")
    return ModelTimes("m", "onnx", timing, (*rows, untimed))


@pytest.mark.parametrize("rows_total,adds_up", [(8.6, True), (8.4, False), (11.4, True), (11.6, False)])
def test_the_15_percent_rule(rows_total, adds_up):
    times = _times([0.010] * 3, [[0.004] * 3, [(rows_total - 4) / 1e3] * 3])
    assert times.whole_ms.median == pytest.approx(10.0)
    assert times.layers_ms == pytest.approx(rows_total)
    assert times.attribution == pytest.approx(rows_total / 10)
    assert times.adds_up is adds_up
    assert times.untimed == ["gone"]  # listed, not dropped
    assert times.round_attribution.value == pytest.approx(rows_total / 10)


def test_the_15_percent_rule_on_a_small_model_is_computed_from_its_rows(tiny):
    """The rule's inputs on a real run: every timed row counts once, and the verdict follows from them."""
    (times,) = time_layers([tiny], "litert", **FAST)
    total = sum(row.ms for row in times.layers if row.timed)
    assert times.layers_ms == pytest.approx(total)
    assert times.attribution == pytest.approx(total / times.whole_ms.median)
    assert times.adds_up == (abs(total / times.whole_ms.median - 1) <= 0.15)
    per_round = times.round_attribution
    assert per_round.rounds == len(times.whole.seconds) == 3 and per_round.low <= per_round.value <= per_round.high


def test_ceilings_name_the_fastest_op_and_bound_the_roofline():
    ceilings = measure_ceilings("litert", **FAST)
    assert ceilings.gflops.median > 0 and ceilings.gbps.median > 0 and ceilings.unit == "GFLOP/s"
    assert "peak_wide" in ceilings.compute_op and "stream_add" in ceilings.memory_op
    seconds, binding = ceilings.bound(2e9, 1e6)  # far right of the ridge: compute binds
    assert binding == "compute" and seconds == pytest.approx(2e9 / (1e9 * ceilings.gflops.median))
    assert ceilings.bound(1e3, 1e9)[1] == "memory"


def test_a_ceiling_op_below_the_noise_is_left_out_and_none_left_is_an_error(monkeypatch):
    from mobilenet_sep.speed import ceilings

    def fake_time_layers(milliseconds):
        def timed(models, runtime, **options):
            rows = [
                LayerTime(
                    name, "other", "op", 10**9, 10**6, tuple(seconds / 1e3 for seconds in milliseconds[name]), "timed"
                )
                for name in (*ceilings.COMPUTE_OPS, *ceilings.MEMORY_OPS)
            ]
            return [ModelTimes("ceilings", runtime, measure.Timing(runtime, 1, 1, 1, (0.01,) * 3), tuple(rows))]

        return timed

    milliseconds = {name: (10.0, 11.0, 12.0) for name in (*ceilings.COMPUTE_OPS, *ceilings.MEMORY_OPS)}
    milliseconds["stream_add"] = (-0.1, 0.0, 0.2)  # a marginal time within the noise of a short run
    monkeypatch.setattr(ceilings, "time_layers", fake_time_layers(milliseconds))
    measured = ceilings.measure_ceilings("onnx")
    assert "stream_add" not in measured.memory_op and "stream_depthwise" in measured.memory_op
    assert measured.gflops.median == pytest.approx(2 * 10**9 / 11e-3 / 1e9)
    milliseconds["stream_depthwise"] = (0.0, -0.2, 0.0)
    with pytest.raises(ValueError, match="No ceiling op of stream_depthwise, stream_add could be timed"):
        ceilings.measure_ceilings("onnx")


def test_cli_per_layer_json_csv_and_errors(capsys, tmp_path):
    out = tmp_path / "layers.csv"
    arguments = ["compare", "--layer", "12x12x4:k3:n8", "--per-layer", "--runtimes", "litert", "--repeats", "3"]
    assert main([*arguments, "--threads", "1", "--json", "--csv", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["per_layer"]) == {"litert"} and data["csv"] == str(out)
    assert data["ceilings"]["litert"]["gflops"] > 0
    assert out.read_text().startswith("runtime,role,model,name,kind")
    assert main(["compare", "--layer", "12x12x4:k3:n8", "--csv", str(out)]) == 2
    assert "add --per-layer" in capsys.readouterr().err
    assert main([*arguments, "--runtimes", "litert,gpu"]) == 2
    assert "Received: runtimes='litert,gpu'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Received: runtimes='cuda'"):
        per_layer.compare_per_layer(None, None, runtimes=("cuda",))
