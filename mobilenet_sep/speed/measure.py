"""One timing harness for every runtime: TensorFlow (inference and a training step), ONNX Runtime, LiteRT.

Every measurement runs the same way: `warmup` untimed runs (tracing, allocation,
caches), then up to `repeats` timed runs, stopping early once `budget_s` seconds
are spent (after at least `MIN_REPEATS`). The result keeps each run's wall time,
the batch size and the thread count, so callers report the median and spread.
`benchmark` and the standard-vs-separable comparison (`compare`) both call
`measure_model`: a model and its twin timed with the same call, on the same
inputs, give ratios.
"""

import dataclasses
import os
import statistics
import time

import numpy as np

from mobilenet_sep.export.fuse import fuse
from mobilenet_sep.export.to_onnx import OnnxRunner, convert_to_onnx
from mobilenet_sep.export.to_tflite import LiteRTRunner, convert_to_tflite, tflite_ops
from mobilenet_sep.speed.runtimes import RUNTIMES, check_runtimes
from mobilenet_sep.utils import checks
from mobilenet_sep.utils.inputs import fixed_input_shape, random_images
from mobilenet_sep.utils.record import available_cores

MIN_REPEATS = 3
INT8_SPEED_CALIBRATION = 8
"""Random images that calibrate an int8 file made only to be timed: its speed does not depend on them."""


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall times of repeated runs of one runtime at one batch size (warm-up excluded).

    `threads` is the thread count the runtime ran with; `file_bytes` the size of
    the exported file timed (None for TensorFlow); `note` says anything that
    qualifies the figure.
    """

    runtime: str
    batch_size: int
    threads: int
    warmup: int
    seconds: tuple[float, ...]
    file_bytes: int | None = None
    note: str = ""

    @property
    def median_s(self):
        return statistics.median(self.seconds)

    @property
    def quartiles_s(self):
        """(25th, 75th) percentile of the run times: the spread around the median."""
        low, high = np.percentile(self.seconds, [25, 75])
        return float(low), float(high)

    @property
    def images_per_second(self):
        return self.batch_size / self.median_s

    def to_dict(self):
        low, high = self.quartiles_s
        return {
            "runtime": self.runtime,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "warmup": self.warmup,
            "repeats": len(self.seconds),
            "median_ms": 1e3 * self.median_s,
            "p25_ms": 1e3 * low,
            "p75_ms": 1e3 * high,
            "min_ms": 1e3 * min(self.seconds),
            "images_per_second": self.images_per_second,
            "file_bytes": self.file_bytes,
            "note": self.note,
        }


def time_runs(run, *, warmup=3, repeats=30, budget_s=10.0):
    """Wall times (s) of `run()` after `warmup` untimed calls; at most `repeats`, at least MIN_REPEATS."""
    for _ in range(warmup):
        run()
    seconds, spent = [], 0.0
    while len(seconds) < repeats and (len(seconds) < MIN_REPEATS or spent < budget_s):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
        spent += seconds[-1]
    return tuple(seconds)


def time_interleaved(runs, *, warmup=3, repeats=30, budget_s=10.0):
    """Wall times (s) of several subjects timed in alternating rounds: A B A B ... (one tuple per subject).

    Each round times every subject once, in the order given, so slow drift of a shared machine
    hits all of them alike and per-round ratios (`stats.paired_ratio`) cancel it. Every subject
    gets `warmup` untimed calls first and the same number of timed ones: at most `repeats` rounds,
    at least MIN_REPEATS, fewer once the rounds have taken `budget_s` seconds in all.
    """
    checks.positive_int(warmup, "warmup", minimum=0)
    checks.positive_int(repeats, "repeats")
    for run in runs:
        for _ in range(warmup):
            run()
    seconds, spent = [[] for _ in runs], 0.0
    while len(seconds[0]) < repeats and (len(seconds[0]) < MIN_REPEATS or spent < budget_s):
        for subject, run in zip(seconds, runs, strict=True):
            start = time.perf_counter()
            run()
            subject.append(time.perf_counter() - start)
            spent += subject[-1]
    return [tuple(subject) for subject in seconds]


def available_threads():
    """CPU cores this process may run on."""
    return available_cores()


def set_tensorflow_threads(threads):
    """Ask TensorFlow for `threads` intra-op and `threads` inter-op threads; returns the intra-op count in effect.

    Inter-op threads let the training step run independent gradient ops side by
    side (one inter-op thread made it about 1.5x slower here). TensorFlow fixes its thread pools when it first runs an op, so call this before
    building any model; afterwards the request is ignored and the result says so
    (None: TensorFlow's default pool, one thread per core).
    """
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow is already running: its pools are fixed
            pass
    return tf.config.threading.get_intra_op_parallelism_threads() or None


def _check_arguments(runtimes, batch_sizes, threads, warmup, repeats, budget_s):
    check_runtimes(runtimes)
    if not batch_sizes or not all(checks.is_int(size) and size >= 1 for size in batch_sizes):
        checks.fail("batch_sizes", list(batch_sizes), "must be positive ints")
    checks.optional_positive_int(threads, "threads")
    checks.positive_int(warmup, "warmup", minimum=0)
    checks.positive_int(repeats, "repeats")
    checks.number(budget_s, "budget_s", low=0)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """A runtime ready to time: `make_run(batch_size)` returns the zero-argument call that is timed."""

    runtime: str
    make_run: object
    threads: int
    file_bytes: int | None = None
    note: str = ""
    fixed_batch: int | None = None
    content: bytes | None = None  # the exported file that is timed (ONNX, TFLite): per-layer timing reads it

    def note_at(self, batch_size):
        """The note, plus how a batch larger than a file's fixed batch was run."""
        if self.fixed_batch is None or batch_size <= self.fixed_batch:
            return self.note
        fixed = f"fixed batch of {self.fixed_batch} (as shipped): a larger batch runs in turn"
        return f"{self.note}; {fixed}" if self.note else fixed


def _tf_inference(model, threads, runtime="tf"):
    import tensorflow as tf

    effective = set_tensorflow_threads(threads)
    predict = tf.function(lambda images: model(images, training=False), jit_compile=False)

    def make_run(batch_size):
        images = tf.constant(random_images(batch_size, model.input_shape[1:]))
        return lambda: np.asarray(predict(images))

    return _Prepared(runtime, make_run, effective or available_threads(), note=_tf_threads_note(effective, threads))


def _tf_training(model, threads):
    import keras

    effective = set_tensorflow_threads(threads)
    # A clone, so timing never changes the caller's weights or compiles their model.
    trainee = keras.models.clone_model(model)
    trainee.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse", jit_compile=False)

    def make_run(batch_size):
        images = random_images(batch_size, model.input_shape[1:])
        targets = np.zeros((batch_size, *model.output_shape[1:]), "float32")
        return lambda: trainee.train_on_batch(images, targets)

    return _Prepared("tf-train", make_run, effective or available_threads(), note=_tf_threads_note(effective, threads))


def _tf_threads_note(effective, requested):
    if effective == requested:
        return ""
    return f"TensorFlow was already running with {effective or 'its default'} threads; {requested} could not be set"


def _onnx(content, threads, shape):
    runner = OnnxRunner(content, threads)

    def make_run(batch_size):
        images = random_images(batch_size, shape)
        return lambda: runner(images)

    return _Prepared("onnx", make_run, threads, len(content), content=content)


def _litert(content, threads, shape, runtime, note=""):
    runner = LiteRTRunner(content, threads)

    def make_run(batch_size):
        native = runner.native_input(random_images(batch_size, shape))
        return lambda: runner.invoke(native)

    return _Prepared(runtime, make_run, threads, len(content), note, runner.fixed_batch, content=content)


def prepare(model, runtime, threads):
    """`model` ready to time on `runtime` with `threads`: `make_run(batch_size)` gives the timed call."""
    shape = fixed_input_shape(model)
    if runtime == "tf":
        return _tf_inference(model, threads)
    if runtime == "tf-fused":
        return _tf_inference(fuse(model), threads, runtime)
    if runtime == "tf-train":
        return _tf_training(model, threads)
    if runtime == "onnx":
        return _onnx(convert_to_onnx(model), threads, shape)
    if runtime == "litert":
        return _litert(convert_to_tflite(model), threads, shape, runtime)
    calibration = random_images(INT8_SPEED_CALIBRATION, shape, seed=1)
    note = "calibrated on random inputs (for speed, not accuracy)"
    return _litert(convert_to_tflite(model, "int8", calibration), threads, shape, runtime, note)


def _time_prepared(prepared, batch_sizes, warmup, repeats, budget_s, progress):
    timings = []
    for batch_size in batch_sizes:
        if progress is not None:
            progress(f"timing {prepared.runtime} at batch {batch_size}")
        seconds = time_runs(prepared.make_run(batch_size), warmup=warmup, repeats=repeats, budget_s=budget_s)
        timings.append(timing_of(prepared, batch_size, warmup, seconds))
    return timings


def timing_of(prepared, batch_size, warmup, seconds) -> Timing:
    """The `Timing` of `seconds` timed with `prepared` at `batch_size`."""
    return Timing(
        prepared.runtime, batch_size, prepared.threads, warmup, seconds, prepared.file_bytes, prepared.note_at(batch_size)
    )


def measure_interleaved(
    models, runtime, *, batch_size=1, threads=None, warmup=3, repeats=30, budget_s=20.0, progress=None
) -> list[Timing]:
    """Time several models on one runtime in alternating rounds (A B A B ...): one `Timing` per model.

    Every model gets the same warm-up and the same number of timed runs (see `time_interleaved`;
    `budget_s` is for all of them together), so round i of each is paired with round i of the
    others and their per-round ratios (`stats.paired_ratio`) cancel the drift of a shared machine.
    """
    _check_arguments((runtime,), (batch_size,), threads, warmup, repeats, budget_s)
    threads = threads or available_threads()
    prepared = []
    for model in models:
        if progress is not None:
            progress(f"preparing {runtime} for {model.name}")
        prepared.append(prepare(model, runtime, threads))
    names = " / ".join(model.name for model in models)
    return _interleave(prepared, names, batch_size, warmup, repeats, budget_s, progress)


def measure_files_interleaved(
    paths, *, batch_size=1, threads=None, warmup=3, repeats=30, budget_s=20.0, progress=None
) -> list[Timing]:
    """`measure_interleaved` for exported files, each on its own runtime (see `measure_file`): one `Timing` each."""
    _check_arguments(("onnx",), (batch_size,), threads, warmup, repeats, budget_s)
    threads = threads or available_threads()
    prepared = [prepare_file(path, threads) for path in paths]
    names = " / ".join(os.path.basename(os.fspath(path)) for path in paths)
    return _interleave(prepared, names, batch_size, warmup, repeats, budget_s, progress)


def _interleave(prepared, names, batch_size, warmup, repeats, budget_s, progress):
    if progress is not None:
        progress(f"timing {prepared[0].runtime} at batch {batch_size}: {names} in turn")
    runs = [subject.make_run(batch_size) for subject in prepared]
    seconds = time_interleaved(runs, warmup=warmup, repeats=repeats, budget_s=budget_s)
    return [timing_of(subject, batch_size, warmup, times) for subject, times in zip(prepared, seconds, strict=True)]


def measure_model(
    model,
    runtimes=tuple(RUNTIMES),
    *,
    batch_sizes=(1,),
    threads=None,
    warmup=3,
    repeats=30,
    budget_s=10.0,
    progress=None,
):
    """Time `model` on each runtime at each batch size: a list of `Timing`s, runtimes in the order given.

    ONNX and LiteRT files are converted in memory once per runtime. `threads`
    (default: every available core) applies to every runtime; TensorFlow takes it
    only if it has not run yet (see `set_tensorflow_threads`). Inputs are seeded
    random images, the same for every model of the same input shape, so a model
    and its twin see the same data. `progress(message)` is called before each
    measurement.
    """
    _check_arguments(runtimes, batch_sizes, threads, warmup, repeats, budget_s)
    threads = threads or available_threads()
    timings = []
    for runtime in runtimes:
        if progress is not None:
            progress(f"preparing {runtime}")
        prepared = prepare(model, runtime, threads)
        timings += _time_prepared(prepared, batch_sizes, warmup, repeats, budget_s, progress)
    return timings


def measure_file(path, *, batch_sizes=(1,), threads=None, warmup=3, repeats=30, budget_s=10.0, progress=None):
    """Time an exported `.onnx` or `.tflite` file as it is: a list of `Timing`s, one per batch size.

    A `.tflite` file whose convolutions take int8 inputs is reported as `litert-int8`.
    """
    _check_arguments(("onnx",), batch_sizes, threads, warmup, repeats, budget_s)
    prepared = prepare_file(path, threads or available_threads())
    return _time_prepared(prepared, batch_sizes, warmup, repeats, budget_s, progress)


def _check_readable(path, content):
    """A ValueError naming the file when its runtime cannot load it (empty, garbage, truncated)."""
    if not content:
        raise ValueError(f"The file is empty. Received: path={path!r}")
    try:
        OnnxRunner(content) if path.endswith(".onnx") else LiteRTRunner(content)
    except Exception as error:  # noqa: BLE001  each runtime raises its own kinds (onnxruntime: bare Exceptions)
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(f"Cannot load the file ({reason}). Received: path={path!r}") from None


def prepare_file(path, threads):
    """An exported `.onnx` or `.tflite` file ready to time on its own runtime (int8 convolutions: `litert-int8`)."""
    path = os.fspath(path)
    if not path.endswith((".onnx", ".tflite")):
        raise ValueError(f"Only .onnx and .tflite files can be timed. Received: path={path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"No such file. Received: path={path!r}")
    with open(path, "rb") as file:
        content = file.read()
    _check_readable(path, content)
    if path.endswith(".onnx"):
        shape = OnnxRunner(content).session.get_inputs()[0].shape[1:]
        if not all(isinstance(size, int) for size in shape):
            raise ValueError(f"Only files with a fixed input size can be timed. Received: input shape={shape}")
        prepared = _onnx(content, threads, shape)
    else:
        shape = LiteRTRunner(content).input["shape"][1:]
        int8 = any(op.input_type == "INT8" for op in tflite_ops(content))
        prepared = _litert(content, threads, shape, "litert-int8" if int8 else "litert")
    return prepared
