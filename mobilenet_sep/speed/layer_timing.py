"""Per-layer time of models on one runtime, taken in the same rounds as their whole-model time.

One `measure.time_interleaved` loop per runtime: each round runs every model whole, as the
harness times it (its figure), then what gives its layers' times:

- TensorFlow (tf, tf-fused, tf-train): one call traced with TensorFlow's profiler; an op's time is
  its share of the call's wall time (`attribution.timeline_shares`: the executor's gaps between
  ops go to the op dispatched next), its kernel time kept beside;
- ONNX Runtime and LiteRT (fp32, int8): the timed file cut after each layer (`onnx_cut`,
  `tflite_cut`), every prefix timed; a layer's time is what it adds, its prefix's time minus the
  one before. LiteRT's Python interpreter has no per-op profiler. ONNX Runtime's session
  profiling has one, but it slows the session it watches, and on MobileNet its kernel times
  added up to far more than the unprofiled run, as single-op files timed one by one did on LiteRT
  (each op paying a call and a sleeping thread pool of its own); a prefix pays those once.

So every model and every layer gets the same warm-up, threads and rounds, and a layer's time is
the median of its rounds. Whatever is timed follows an untimed call of itself in the same round
(its thread pool awake, its data in cache): the steady state of a loop of inferences. Ops go to
the layer their name names (`attribution`); ops a runtime inserts itself (layout changes, int8
conversions), ops whose name names no layer and the call's time outside the runtime's ops are rows
of their own, so the attribution adds up: the rows' sum is compared with the whole-model time.
On the cut runtimes a round's differences add up to its longest cut by construction; there the
comparison checks that the cut file runs as the timed one does, and that the medians of noisy
differences still add up.
"""

import collections
import dataclasses
import statistics

from mobilenet_sep.profiler import HEADLINE_KINDS, profile
from mobilenet_sep.speed import measure, stats
from mobilenet_sep.speed.attribution import LayerGraph, kernel_seconds, timeline_shares
from mobilenet_sep.speed.cutters import CUTTERS
from mobilenet_sep.speed.roofline import element_bytes, minimum_bytes
from mobilenet_sep.speed.tf_trace import TensorFlowTrace
from mobilenet_sep.utils.inputs import fixed_input_shape, random_images

_TF_TRACE = (
    "TensorFlow's profiler (tf.profiler.experimental, one traced call per round): each op's share of the call, "
    "the executor's gap before an op included"
)
_PREFIXES = (
    "marginal time of prefixes (one timed run per prefix per round, each layer's time its prefix's minus the "
    "previous prefix's, same threads, warm-up and rounds as the whole model): the timed"
)
METHODS = {
    "tf": f"{_TF_TRACE}, by the Keras layer its name scope names",
    "tf-fused": f"{_TF_TRACE}, of the BatchNorm-folded model, by the Keras layer its name scope names",
    "tf-train": f"{_TF_TRACE}, of the training step: forward and backward ops by the layer their name scope "
    "names; the loss and the optimizer's updates name no layer and are rows of their own",
    "onnx": f"{_PREFIXES} ONNX file cut after each layer",
    "litert": f"{_PREFIXES} .tflite file cut after each layer; LiteRT's Python interpreter has no per-op profiler",
}
METHODS["litert-int8"] = METHODS["litert"]
"""How each runtime's per-layer times are measured, as the output says it."""

RUNTIME_OPS = {
    "onnx": frozenset({"Transpose"}),
    "litert": frozenset({"QUANTIZE", "DEQUANTIZE"}),
    "litert-int8": frozenset({"QUANTIZE", "DEQUANTIZE"}),
}
"""Op types a runtime inserts itself (layout changes, int8 conversions): rows of their own, not a layer's time."""

BELOW_NOISE = "timed: below the noise (a cut that ends with it ran no slower than the cut before)"
"""The status of a row whose median time is not above zero: timed, with no achieved rate."""

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
    if runtime in CUTTERS:
        return _PrefixSubject(model, prepared, graph, runtime, batch_size)
    return _TracedSubject(model.name, prepared, graph, runtime, batch_size)


class _TracedSubject:
    """A TensorFlow model timed whole, and once more per round under TensorFlow's profiler."""

    def __init__(self, model_name, prepared, graph, runtime, batch_size):
        self.model_name, self.prepared, self.graph, self.runtime = model_name, prepared, graph, runtime
        self.whole = prepared.make_run(batch_size)
        self.trace = TensorFlowTrace(self.whole)
        self.runs = [self.trace.run]

    def rows(self, seconds, warmup):
        rounds = self.trace.rounds(warmup)
        tally, keys = _Tally(self.graph, self.runtime, len(rounds)), {}
        overhead = tally.runtime_key("call", "outside the runtime's ops")
        for index, traced in enumerate(rounds):
            keyed = []
            for event in traced.events:
                if (event.name, event.op_type) not in keys:
                    keys[event.name, event.op_type] = tally.key([event.name], event.op_type)
                keyed.append((event.start, event.end, keys[event.name, event.op_type]))
            tally.add(index, timeline_shares(keyed), kernel_seconds(keyed))
            tally.add(index, {overhead: traced.call_overhead}, {})
        return tally.rows()


class _PrefixSubject:
    """A model timed whole, and cut after each of its layers in the same rounds (ONNX Runtime, LiteRT).

    Each segment (a layer's ops: a convolution with its padding, BatchNorm and activation) ends
    a prefix of the file; a segment's time in a round is its prefix's time minus the previous
    prefix's. The whole model's call also copies its input in and its output out: a row of its own.
    """

    def __init__(self, model, prepared, graph, runtime, batch_size):
        self.model_name, self.prepared = model.name, prepared
        self.whole = prepared.make_run(batch_size)
        self.tally = _Tally(graph, runtime)
        cutter = CUTTERS[runtime]
        self.segments = _segments(cutter.keys(prepared.content, self.tally), graph, self.tally)
        prefixes = cutter.prefix_models(prepared.content, [positions[-1] for _, positions in self.segments])
        calls = -(-batch_size // prepared.fixed_batch) if prepared.fixed_batch else 1  # a fixed-batch file runs in turn
        images = random_images(prepared.fixed_batch or batch_size, fixed_input_shape(model))
        # Each prefix has a thread pool of its own, asleep since its last round: an untimed call just
        # before the timed one wakes it, as the ops before a layer keep the whole model's awake.
        runners = [cutter.runner(prefix, prepared.threads, images) for prefix in prefixes]
        self.runs = []
        for runner in runners:
            run = _repeated(runner.run, calls)
            self.runs += [run, run]
        # The longest prefix is the whole file: its copies in and out are the whole model's call's.
        self.runs.append(_repeated(runners[-1].copy_through, calls))

    def rows(self, seconds, warmup):
        prefixes, copies = seconds[1:-1:2], seconds[-1]  # each prefix's timed call, after its waking call
        self.tally.rounds = len(copies)
        self.tally.add_rounds(
            self.tally.runtime_key("call", "set input, get output: outside the runtime's ops"), copies
        )
        previous = [0.0] * len(copies)
        for (owner, _), prefix_seconds in zip(self.segments, prefixes, strict=True):
            self.tally.add_rounds(owner, [now - before for now, before in zip(prefix_seconds, previous, strict=True)])
            previous = prefix_seconds
        return self.tally.rows()


def _segments(keys, graph, tally):
    """The ops (positions) timed as one, with the row their time goes to: [(row, positions)].

    A layer's ops are one segment, with the BatchNorm, activation and padding ops that
    `LayerGraph.host` folds into it (they are fused into its row); any other row, and each op the
    runtime inserted itself, is a segment of its own.
    """
    layers = {key for key in keys if graph.kinds.get(key) in HEADLINE_KINDS}
    segments = []
    for position, key in enumerate(keys):
        owner = key
        if key not in tally.runtime_rows and key not in layers:
            owner = graph.host(key, layers) or key
        if segments and segments[-1][0] == owner and owner not in tally.runtime_rows:
            segments[-1][1].append(position)
        else:
            segments.append((owner, [position]))
        if owner != key:
            tally.fold(key, owner)
    return segments


def _repeated(run, calls):
    if calls == 1:
        return run

    def several():
        for _ in range(calls):
            run()

    return several


class _Tally:
    """Per-round seconds of each row, the ops that ran for it and what was fused where; then the rows."""

    def __init__(self, graph, runtime, rounds=None):
        self.graph, self.runtime, self.rounds = graph, runtime, rounds  # `rounds` may be set once the ops are keyed
        self.seconds = collections.defaultdict(lambda: [0.0] * self.rounds)
        self.kernels = collections.defaultdict(lambda: [0.0] * self.rounds)
        self.ops = collections.defaultdict(dict)
        self.fused_into, self.runtime_rows = {}, {}

    @property
    def taken(self) -> set:
        """Rows an op has claimed so far."""
        return set(self.ops) | set(self.seconds) | set(self.fused_into)

    def key(self, names, op_type, named=False):
        """The row an op's time goes to: its claimed layer, or a runtime row (`named`: `names` are layers already)."""
        if self.inserted_by_runtime(op_type):
            return self.runtime_key(op_type, "inserted by the runtime")
        layers = names if named else [layer for name in names if (layer := self.graph.layer_named_in(name))]
        if not layers:
            return self.runtime_key(op_type, "names no layer")
        claim = self.graph.claim(layers, op_type)
        self.ops[claim.row][op_type] = None
        for row in claim.fused:
            self.fused_into.setdefault(row, claim.row)
        return claim.row

    def inserted_by_runtime(self, op_type) -> bool:
        """Whether ops of `op_type` are the runtime's own (`RUNTIME_OPS`): layout changes, int8 conversions."""
        return op_type.split("+")[0] in RUNTIME_OPS.get(self.runtime, ())

    def fold(self, row, host):
        """Row `row`'s ops ran as part of `host`'s: no time of its own, its ops listed with the host's."""
        self.fused_into.setdefault(row, host)
        self.ops[host].update(self.ops.pop(row, {}))

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
            if status == "timed" and statistics.median(self.seconds[row.name]) <= 0:
                status = BELOW_NOISE
            rows.append(
                LayerTime(
                    row.name,
                    row.kind if row.kind in HEADLINE_KINDS else "other",
                    row.kind,
                    row.mult_adds,
                    minimum_bytes(row, element),
                    tuple(self.seconds[row.name]) if status.startswith("timed") else (),
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
