"""Per-layer time of models on one runtime, taken in the same rounds as their whole-model time.

One `measure.time_interleaved` loop per runtime: each round runs every model whole, as the
harness times it (its figure), then what gives its layers' times:

- TensorFlow (tf, tf-fused, tf-train): one call traced with TensorFlow's profiler;
- ONNX Runtime: one run of a second session on the same file with its profiler on;
- LiteRT (fp32, int8): every operator of the timed file, cut out and run alone (`tflite_cut`).

So every model and every layer gets the same warm-up, threads and rounds, and a layer's time is
the median of its rounds. Whatever is timed follows an untimed call of itself in the same round
(its thread pool awake, its data in cache): the steady state of a loop of inferences. From TensorFlow's trace an op's time is its share of the call's wall time
(`attribution.timeline_shares`: the executor's gaps between ops go to the op dispatched next), from
ONNX Runtime's its kernel time (`op_profiles` says why); the kernel times are kept beside. Ops go to the layer their name names (`attribution`);
ops a runtime inserts itself (layout changes, int8 conversions), ops whose name names no layer and
a profiled call's time outside the runtime's executor are rows of their own, so the attribution
adds up: the rows' sum is compared with the whole-model time.
"""

import collections
import dataclasses

from mobilenet_sep.export.to_tflite import LiteRTRunner
from mobilenet_sep.profiler import HEADLINE_KINDS, profile
from mobilenet_sep.speed import measure, stats
from mobilenet_sep.speed.attribution import LayerGraph, kernel_seconds, timeline_shares
from mobilenet_sep.speed.op_profiles import OnnxNodeProfile, TensorFlowTrace
from mobilenet_sep.speed.roofline import element_bytes, minimum_bytes
from mobilenet_sep.speed.tflite_cut import CutOpRunner, cut_ops
from mobilenet_sep.utils.inputs import fixed_input_shape, random_images

_TF_TRACE = (
    "TensorFlow's profiler (tf.profiler.experimental, one traced call per round): each op's share of the call, "
    "the executor's gap before an op included"
)
METHODS = {
    "tf": f"{_TF_TRACE}, by the Keras layer its name scope names",
    "tf-fused": f"{_TF_TRACE}, of the BatchNorm-folded model, by the Keras layer its name scope names",
    "tf-train": f"{_TF_TRACE}, of the training step: forward and backward ops by the layer their name scope "
    "names; the loss and the optimizer's updates name no layer and are rows of their own",
    "onnx": "ONNX Runtime's session profiling (SessionOptions.enable_profiling, one profiled run per round): each "
    "node's kernel time, by the Keras layer its name names",
    "litert": "timed single-op models: each operator of the timed .tflite file cut out and run alone (its real "
    "input shape, same threads, warm-up and rounds as the whole model); LiteRT's Python interpreter has no "
    "per-op profiler",
}
METHODS["litert-int8"] = METHODS["litert"]
"""How each runtime's per-layer times are measured, as the output says it."""

RUNTIME_OPS = {
    "onnx": frozenset({"Transpose", "ReorderInput", "ReorderOutput"}),
    "litert": frozenset({"QUANTIZE", "DEQUANTIZE"}),
    "litert-int8": frozenset({"QUANTIZE", "DEQUANTIZE"}),
}
"""Op types a runtime inserts itself (layout changes, int8 conversions): rows of their own, not a layer's time."""

TOLERANCE = 0.15
"""Per-layer times must add up to the whole-model time within this fraction."""


@dataclasses.dataclass(frozen=True)
class LayerTime:
    """One profile row (or one kind of runtime-inserted op) on one runtime: its count, its traffic and its rounds.

    `kind` is standard / depthwise / pointwise / dense / other; `detail` the profiler's own kind
    (normalization, activation, ...) or "runtime" for ops that are no Keras layer. `seconds` has
    one time per round, empty for a row without time of its own; `status` says why ("fused into
    conv_dw_1", "no op at run time", "not timed: ..."). `fused` are the rows the runtime ran
    inside this one's ops; `kernel_seconds` the profiler's kernel times alone (no dispatch gaps).
    """

    name: str
    kind: str
    detail: str
    mult_adds: int
    bytes: int | None
    seconds: tuple
    status: str
    ops: tuple = ()
    fused: tuple = ()
    kernel_seconds: tuple = ()

    @property
    def timed(self) -> bool:
        return bool(self.seconds)

    @property
    def spread_ms(self) -> stats.Spread | None:
        return stats.Spread.of(self.seconds).scaled(1e3) if self.seconds else None

    @property
    def ms(self) -> float | None:
        return self.spread_ms.median if self.seconds else None

    @property
    def intensity(self) -> float | None:
        """FLOP per byte of minimum traffic."""
        return 2 * self.mult_adds / self.bytes if self.bytes else None

    @property
    def ops_text(self) -> str:
        return ", ".join(self.ops)


@dataclasses.dataclass(frozen=True)
class ModelTimes:
    """One model on one runtime: its whole-model `Timing` and its rows, from the same rounds."""

    model: str
    runtime: str
    whole: measure.Timing
    layers: tuple

    @property
    def method(self) -> str:
        return METHODS[self.runtime]

    @property
    def whole_ms(self) -> stats.Spread:
        return stats.Spread.of(self.whole.seconds).scaled(1e3)

    @property
    def layers_ms(self) -> float:
        """The sum of the rows' median times."""
        return sum(row.ms for row in self.layers if row.timed)

    @property
    def attribution(self) -> float:
        """Sum of the rows' times over the whole-model time: 1.0 when the attribution adds up exactly."""
        return self.layers_ms / self.whole_ms.median

    @property
    def adds_up(self) -> bool:
        return abs(self.attribution - 1.0) <= TOLERANCE

    @property
    def round_attribution(self) -> stats.Ratio:
        """Round by round, the rows' sum over the whole-model time of the same round: its median and interval."""
        sums = [sum(row.seconds[index] for row in self.layers if row.timed) for index in range(len(self.whole.seconds))]
        return stats.paired_ratio(sums, self.whole.seconds)

    @property
    def untimed(self) -> list[str]:
        """Rows that should have a time and have none: listed, never dropped."""
        return [row.name for row in self.layers if row.status.startswith("not timed")]


def time_layers(models, runtime, *, batch_size=1, threads=None, warmup=3, repeats=30, budget_s=20.0, progress=None):
    """`ModelTimes` of each model on `runtime`, every model and every layer timed in the same rounds."""
    threads = threads or measure.available_threads()
    subjects = []
    for model in models:
        if progress is not None:
            progress(f"preparing {runtime} for {model.name}")
        subjects.append(_subject(model, measure.prepare(model, runtime, threads), runtime, batch_size))
    if progress is not None:
        progress(f"timing {runtime} layer by layer: {' / '.join(model.name for model in models)} in turn")
    # Each round: the first model whole twice (an untimed call wakes its threads and fills its caches,
    # as the call before does in a loop of inferences; the layers' runs get the same), then its
    # layers, then the next model likewise.
    runs = [run for subject in subjects for run in (subject.whole, subject.whole, *subject.runs)]
    seconds = measure.time_interleaved(runs, warmup=warmup, repeats=repeats, budget_s=budget_s)
    results, position = [], 0
    for subject in subjects:
        whole, own = seconds[position + 1], seconds[position + 2 : position + 2 + len(subject.runs)]
        position += 2 + len(subject.runs)
        timing = measure.timing_of(subject.prepared, batch_size, warmup, whole)
        results.append(ModelTimes(subject.model_name, runtime, timing, subject.rows(own, warmup)))
    return results


def _subject(model, prepared, runtime, batch_size):
    graph = LayerGraph.of(model, profile(model))
    if runtime.startswith("litert"):
        return _CutSubject(model.name, prepared, graph, runtime, batch_size)
    return _ProfiledSubject(model, prepared, graph, runtime, batch_size)


class _ProfiledSubject:
    """A model timed whole, and once more per round under the runtime's own profiler."""

    def __init__(self, model, prepared, graph, runtime, batch_size):
        self.model_name, self.prepared, self.graph, self.runtime = model.name, prepared, graph, runtime
        self.whole = prepared.make_run(batch_size)
        if runtime == "onnx":
            images = random_images(batch_size, fixed_input_shape(model))
            self.profiler = OnnxNodeProfile(prepared.content, prepared.threads, images)
        else:
            self.profiler = TensorFlowTrace(self.whole)
        self.runs = [self.profiler.run]

    def rows(self, seconds, warmup):
        rounds = self.profiler.rounds(warmup)
        tally, keys = _Tally(self.graph, self.runtime, len(rounds)), {}
        overhead = tally.runtime_key("call", "outside the runtime's ops")
        for index, profiled in enumerate(rounds):
            keyed = []
            for event in profiled.events:
                if (event.name, event.op_type) not in keys:
                    keys[event.name, event.op_type] = tally.key([event.name], event.op_type)
                keyed.append((event.start, event.end, keys[event.name, event.op_type]))
            kernels = kernel_seconds(keyed)
            tally.add(index, timeline_shares(keyed) if self.profiler.charges_gaps else kernels, kernels)
            tally.add(index, {overhead: profiled.call_overhead}, {})
        return tally.rows()


class _CutSubject:
    """A LiteRT model timed whole, and each of its operators alone in the same rounds."""

    def __init__(self, model_name, prepared, graph, runtime, batch_size):
        self.model_name, self.prepared, self.graph, self.runtime = model_name, prepared, graph, runtime
        self.whole = prepared.make_run(batch_size)
        self.ops = cut_ops(prepared.content)
        calls = -(-batch_size // prepared.fixed_batch) if prepared.fixed_batch else 1  # a fixed-batch file runs in turn
        # Each operator's interpreter has a thread pool of its own, asleep since its last round: an
        # untimed call just before the timed one wakes it, as the ops before it keep the whole model's awake.
        self.runs = []
        for op in self.ops:
            run = _repeated(CutOpRunner(op, prepared.threads).run, calls)
            self.runs += [run, run]
        # What the whole model's call does besides invoking the interpreter: copy the input in, the output out.
        copier = LiteRTRunner(prepared.content, prepared.threads)
        native = copier.native_input(random_images(copier.batch_size, copier.input["shape"][1:]))
        self.runs.append(_repeated(lambda: _copy_through(copier, native), calls))

    def rows(self, seconds, warmup):
        seconds, copies = seconds[1:-1:2], seconds[-1]  # each operator's timed call, after its waking call
        tally = _Tally(self.graph, self.runtime, len(copies))
        tally.add_rounds(tally.runtime_key("call", "set input, get output: outside the runtime's ops"), copies)
        rows_by_op = {}
        for op, op_seconds in zip(self.ops, seconds, strict=True):
            layers = [layer for part in op.name.split(";") if (layer := self.graph.layer_named_in(part))]
            if not layers and op.op_type not in RUNTIME_OPS[self.runtime]:
                # The last op writes the model's output, named after the signature: the layer after its producer's.
                successor = self.graph.successor(rows_by_op.get(op.producer), tally.taken)
                layers = [successor] if successor else []
            key = tally.key(layers, op.label, named=True)
            # An op the runtime inserted (QUANTIZE) passes on the layer of the op before it.
            rows_by_op[op.position] = rows_by_op.get(op.producer) if key in tally.runtime_rows else key
            tally.add_rounds(key, op_seconds)
        return tally.rows()


def _copy_through(runner, native):
    runner.interpreter.set_tensor(runner.input["index"], native)
    runner.interpreter.get_tensor(runner.output["index"])


def _repeated(run, calls):
    if calls == 1:
        return run

    def several():
        for _ in range(calls):
            run()

    return several


class _Tally:
    """Per-round seconds of each row, the ops that ran for it and what was fused where; then the rows."""

    def __init__(self, graph, runtime, rounds):
        self.graph, self.runtime, self.rounds = graph, runtime, rounds
        self.seconds = collections.defaultdict(lambda: [0.0] * rounds)
        self.kernels = collections.defaultdict(lambda: [0.0] * rounds)
        self.ops = collections.defaultdict(dict)
        self.fused_into, self.runtime_rows = {}, {}

    @property
    def taken(self) -> set:
        return set(self.seconds) | set(self.fused_into)

    def key(self, names, op_type, named=False):
        """The row an op's time goes to: its claimed layer, or a runtime row (`named`: `names` are layers already)."""
        if op_type.split("+")[0] in RUNTIME_OPS.get(self.runtime, ()):
            return self.runtime_key(op_type, "inserted by the runtime")
        layers = names if named else [layer for name in names if (layer := self.graph.layer_named_in(name))]
        if not layers:
            return self.runtime_key(op_type, "names no layer")
        claim = self.graph.claim(layers, op_type)
        self.ops[claim.row][op_type] = None
        for row in claim.fused:
            self.fused_into.setdefault(row, claim.row)
        return claim.row

    def runtime_key(self, op_type, reason):
        """The row of ops that are no Keras layer's: `op_type (reason)`."""
        name = f"{op_type} ({reason})"
        self.runtime_rows[name] = op_type
        return name

    def add(self, index, shares, kernels):
        for key, seconds in shares.items():
            self.seconds[key][index] += seconds
        for key, seconds in kernels.items():
            self.kernels[key][index] += seconds

    def add_rounds(self, key, seconds):
        for index, value in enumerate(seconds):
            self.seconds[key][index] += value

    def rows(self):
        element = element_bytes(self.runtime)
        timed = {name for name in self.seconds if name not in self.runtime_rows}  # a time of its own wins over a fusion
        rows = []
        for row in self.graph.profile.rows:
            status = "timed" if row.name in timed else self._status_without_ops(row, timed)
            rows.append(
                LayerTime(
                    row.name,
                    row.kind if row.kind in HEADLINE_KINDS else "other",
                    row.kind,
                    row.mult_adds,
                    minimum_bytes(row, element),
                    tuple(self.seconds[row.name]) if status == "timed" else (),
                    status,
                    tuple(self.ops.get(row.name, ())),
                    tuple(name for name, host in self.fused_into.items() if host == row.name),
                    tuple(self.kernels[row.name]) if row.name in self.kernels else (),
                )
            )
        for name, op_type in self.runtime_rows.items():
            kernels = tuple(self.kernels[name]) if name in self.kernels else ()
            rows.append(
                LayerTime(
                    name, "other", "runtime", 0, None, tuple(self.seconds[name]), "timed", (op_type,), (), kernels
                )
            )
        return tuple(rows)

    def _status_without_ops(self, row, timed):
        host = self.fused_into.get(row.name) or self.graph.host(row.name, timed)
        if host is not None:
            return f"fused into {host}"
        if row.kind in HEADLINE_KINDS:
            return "not timed: no op of the runtime names this layer"
        return "no op at run time"
