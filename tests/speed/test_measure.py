"""The timing harness: its loop, its statistics, and the structure of what it returns for every runtime."""

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import mobilenet_sep
from mobilenet_sep.export.to_onnx import convert_to_onnx
from mobilenet_sep.export.to_tflite import convert_to_tflite
from mobilenet_sep.speed import measure


def _model():
    return mobilenet_sep.create_model("mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=4)


def test_time_runs_excludes_warmup_and_stops_at_repeats_or_budget():
    calls = []
    seconds = measure.time_runs(lambda: calls.append(1), warmup=2, repeats=5, budget_s=100.0)
    assert len(calls) == 7 and len(seconds) == 5
    slow = measure.time_runs(lambda: time.sleep(0.02), warmup=0, repeats=50, budget_s=0.01)
    assert len(slow) == measure.MIN_REPEATS and min(slow) >= 0.02


def test_timing_statistics_on_known_values():
    timing = measure.Timing("onnx", 8, 2, 3, (0.003, 0.001, 0.002, 0.010), file_bytes=100)
    assert timing.median_s == pytest.approx(0.0025)
    assert timing.quartiles_s == pytest.approx((0.00175, 0.00475))  # linear interpolation between ranks
    assert timing.images_per_second == pytest.approx(3200.0)
    row = timing.to_dict()
    assert row["median_ms"] == pytest.approx(2.5) and row["min_ms"] == pytest.approx(1.0)
    assert row["p25_ms"] == pytest.approx(1.75) and row["p75_ms"] == pytest.approx(4.75)
    assert row["repeats"] == 4


def test_measure_model_times_every_runtime_at_every_batch_size_and_leaves_the_model_alone():
    model = _model()
    weights = [np.array(weight) for weight in model.get_weights()]
    messages = []
    timings = measure.measure_model(
        model, tuple(measure.RUNTIMES), batch_sizes=(1, 2), threads=1, warmup=1, repeats=3, progress=messages.append
    )
    assert [(timing.runtime, timing.batch_size) for timing in timings] == [
        (runtime, batch) for runtime in measure.RUNTIMES for batch in (1, 2)
    ]
    by_runtime = {timing.runtime: timing for timing in timings if timing.batch_size == 1}
    for timing in timings:
        assert len(timing.seconds) == 3 and min(timing.seconds) > 0 and timing.warmup == 1
        # TensorFlow may already run with other threads in this process; then the result says so.
        assert timing.threads == 1 or "could not be set" in timing.note
    for runtime in ("onnx", "litert", "litert-int8"):
        assert by_runtime[runtime].threads == 1 and by_runtime[runtime].file_bytes > 100_000
    assert by_runtime["tf"].file_bytes is None and by_runtime["tf-train"].file_bytes is None
    assert by_runtime["litert-int8"].file_bytes < 0.5 * by_runtime["litert"].file_bytes
    assert "random inputs" in by_runtime["litert-int8"].note
    # LiteRT files take one image at a time: said of batch 2, not of batch 1.
    litert = {timing.batch_size: timing.note for timing in timings if timing.runtime == "litert"}
    assert litert[1] == "" and "fixed batch of 1" in litert[2]
    assert "timing onnx at batch 2" in messages and "preparing litert" in messages
    assert all(np.array_equal(before, after) for before, after in zip(weights, model.get_weights(), strict=True))
    assert not model.compiled


def test_measure_interleaved_pairs_the_rounds_of_several_models(monkeypatch):
    models = [_model(), mobilenet_sep.create_model("conv_mobilenet_v1_0.25_224", input_shape=(32, 32, 3), classes=4)]
    order, messages = [], []
    interleave = measure.time_interleaved

    def spy(runs, **options):
        # Label each subject's calls, so the order of the timed runs shows.
        labelled = [lambda run=run, index=index: (order.append(index), run()) for index, run in enumerate(runs)]
        return interleave(labelled, **options)

    monkeypatch.setattr(measure, "time_interleaved", spy)
    timings = measure.measure_interleaved(models, "onnx", threads=1, warmup=1, repeats=4, progress=messages.append)
    assert order == [0, 1] + [0, 1] * 4  # warm-up of each, then rounds A B A B ...
    assert [len(timing.seconds) for timing in timings] == [4, 4] and {timing.warmup for timing in timings} == {1}
    assert timings[1].file_bytes > 2 * timings[0].file_bytes  # each model timed as its own file: the twin is larger
    assert messages[-1] == "timing onnx at batch 1: mobilenet_v1_0.25_32 / conv_mobilenet_v1_0.25_32 in turn"


def test_measure_file_reads_the_runtime_from_the_file(tmp_path):
    model = _model()
    files = {
        "model.onnx": (convert_to_onnx(model), "onnx"),
        "model_int8.tflite": (convert_to_tflite(model, "int8", np.zeros((2, 32, 32, 3), "float32")), "litert-int8"),
    }
    for name, (content, runtime) in files.items():
        (tmp_path / name).write_bytes(content)
        (timing,) = measure.measure_file(tmp_path / name, batch_sizes=(3,), threads=1, warmup=1, repeats=3)
        assert timing.runtime == runtime and timing.batch_size == 3 and timing.file_bytes == len(content)


def test_bad_arguments_name_the_value():
    model = _model()
    with pytest.raises(ValueError, match=r"Received: runtimes=\('tf', 'pytorch'\)"):
        measure.measure_model(model, ("tf", "pytorch"))
    with pytest.raises(ValueError, match=r"Received: batch_sizes=\[0\]"):
        measure.measure_model(model, ("tf",), batch_sizes=(0,))
    with pytest.raises(ValueError, match="Received: threads=0"):
        measure.measure_model(model, ("tf",), threads=0)
    with pytest.raises(ValueError, match="Received: path='model.pb'"):
        measure.measure_file("model.pb")


def test_tensorflow_threads_are_set_before_the_first_op_and_fixed_after():
    script = textwrap.dedent(
        """
        import mobilenet_sep
        from mobilenet_sep.speed import measure
        print(measure.set_tensorflow_threads(1))
        mobilenet_sep.create_model("mobilenet_v1_0.25_224", input_shape=(32, 32, 3))
        print(measure.set_tensorflow_threads(2))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "1"]
