"""The runtimes' own per-op profilers, one run at a time: TensorFlow's trace and ONNX Runtime's session profiling.

Each gives, for every run it watched, a `ProfiledRun`: the ops that ran with their start and end
(`OpEvent`, seconds), the wall time of the call, and the part of it the runtime spent in its
executor. The profiled runs alternate with unprofiled runs of the whole model in the same rounds
(`layer_timing`), so the profiler's overhead stays out of the whole-model time and the drift of a
shared machine hits both alike.

`charges_gaps` says what an op's time is. TensorFlow's executor spends real time between ops
(dispatching the next one), with or without the trace: an op's time is its share of the run
(`attribution.timeline_shares`). ONNX Runtime's profiler itself writes each node's shapes and
thread statistics between nodes: a node's time is its kernel time alone.
"""

import bisect
import dataclasses
import glob
import json
import os
import re
import shutil
import tempfile
import time

from mobilenet_sep.export.to_onnx import OnnxRunner

CONTAINER_OPS = frozenset(
    {"PartitionedCall", "StatefulPartitionedCall", "While", "If", "StatelessIf", "StatelessWhile"}
)
"""TensorFlow ops that only run a function of other ops, which the trace lists themselves."""

_TF_OP_EVENT = re.compile(r"(?P<name>[^\s:]+):(?P<type>[A-Za-z0-9_]+)")


@dataclasses.dataclass(frozen=True)
class OpEvent:
    """One op of one run: when it started and ended (s, from the run's first op), its name and op type."""

    start: float
    end: float
    name: str
    op_type: str


@dataclasses.dataclass(frozen=True)
class ProfiledRun:
    """One profiled call: its ops, its wall time, and the seconds of it the runtime's executor accounts for."""

    events: list
    call_seconds: float
    executor_seconds: float

    @property
    def call_overhead(self) -> float:
        """What the call cost outside the executor: binding inputs, copying outputs, Python."""
        return max(self.call_seconds - self.executor_seconds, 0.0)


def _span(events):
    return max((event.end for event in events), default=0.0) - min((event.start for event in events), default=0.0)


class OnnxNodeProfile:
    """A second session on the timed ONNX file, with ONNX Runtime's profiler on.

    `run()` runs it once on `images`; `rounds(skip)` ends the profiling and returns every run but
    the first `skip` (the warm-up).
    """

    charges_gaps = False

    def __init__(self, content: bytes, threads: int, images):
        self.folder = tempfile.mkdtemp(prefix="mobilenet-sep-onnx-profile-")
        self.runner = OnnxRunner(content, threads, profile_prefix=os.path.join(self.folder, "profile"))
        self.images = images
        self.calls = []

    def run(self):
        start = time.perf_counter()
        self.runner(self.images)
        self.calls.append(time.perf_counter() - start)

    def rounds(self, skip: int) -> list[ProfiledRun]:
        try:
            with open(self.runner.session.end_profiling()) as file:
                events = json.load(file)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        runs = sorted((event["ts"], event["ts"] + event["dur"]) for event in events if event.get("name") == "model_run")
        suffix = "_kernel_time"
        nodes = sorted(
            (event["ts"], event["ts"] + event["dur"], event["name"][: -len(suffix)], event["args"].get("op_name", ""))
            for event in events
            if event.get("cat") == "Node" and event["name"].endswith(suffix)
        )
        grouped = [[] for _ in runs]
        starts = [start for start, _ in runs]
        for start, end, name, op_type in nodes:
            position = bisect.bisect_right(starts, start) - 1
            if position >= 0 and start <= runs[position][1]:
                grouped[position].append(OpEvent(start * 1e-6, end * 1e-6, name, op_type))
        return [
            ProfiledRun(ops, call, (end - start) * 1e-6)
            for ops, call, (start, end) in zip(grouped, self.calls, runs, strict=True)
        ][skip:]


class TensorFlowTrace:
    """TensorFlow's profiler around single calls of `run`: `run()` traces one call; `rounds(skip)` returns them.

    Each call is traced on its own (start, call, stop), so the untraced whole-model runs between
    them run as they always do. Ops that only call a function (`CONTAINER_OPS`) are left out: the
    ops of the function are in the trace themselves. The executor's part of a call is the span
    from its first op's start to its last op's end.
    """

    charges_gaps = True

    def __init__(self, run):
        self.folder = tempfile.mkdtemp(prefix="mobilenet-sep-tf-trace-")
        self._run = run
        self._rounds = []

    def run(self):
        import tensorflow as tf

        options = tf.profiler.experimental.ProfilerOptions(
            host_tracer_level=2, python_tracer_level=0, device_tracer_level=0
        )
        tf.profiler.experimental.start(self.folder, options=options)
        try:
            start = time.perf_counter()
            self._run()
            call = time.perf_counter() - start
        finally:
            tf.profiler.experimental.stop()
        events = self._read()
        self._rounds.append(ProfiledRun(events, call, _span(events)))

    def _read(self):
        try:
            from tensorflow.tsl.profiler.protobuf import xplane_pb2
        except ImportError:  # where TensorFlow ships tsl as a package of its own
            from tsl.profiler.protobuf import xplane_pb2

        picoseconds = []
        for path in glob.glob(os.path.join(self.folder, "**", "*.xplane.pb"), recursive=True):
            space = xplane_pb2.XSpace()
            with open(path, "rb") as file:
                space.ParseFromString(file.read())
            os.remove(path)
            for plane in space.planes:
                if plane.name.startswith("/host:"):
                    picoseconds += _tf_op_events(plane)
        # Seconds from the call's first op: epoch picoseconds in a float would lose the microseconds.
        base = min((start for start, _, _, _ in picoseconds), default=0)
        return [
            OpEvent((start - base) * 1e-12, (end - base) * 1e-12, name, kind) for start, end, name, kind in picoseconds
        ]

    def rounds(self, skip: int) -> list[ProfiledRun]:
        shutil.rmtree(self.folder, ignore_errors=True)
        return self._rounds[skip:]


def _tf_op_events(plane):
    """(start ps, end ps, name, op type) of the op events of one XPlane: TraceMe events named `scope/op:OpType`."""
    events = []
    for line in plane.lines:
        for event in line.events:
            match = _TF_OP_EVENT.fullmatch(plane.event_metadata[event.metadata_id].name)
            if match and match["type"] not in CONTAINER_OPS:
                start = line.timestamp_ns * 1000 + event.offset_ps
                events.append((start, start + event.duration_ps, match["name"], match["type"]))
    return events
