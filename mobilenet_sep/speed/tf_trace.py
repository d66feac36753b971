"""TensorFlow's own per-op profiler, one call at a time.

For every call it watched, a `ProfiledRun`: the ops that ran with their start and end (`OpEvent`,
seconds), the wall time of the call, and the part of it the runtime spent in its executor. The
traced calls alternate with untraced runs of the whole model in the same rounds (`layer_timing`),
so the profiler's overhead stays out of the whole-model time and the drift of a shared machine
hits both alike. TensorFlow's executor spends real time between ops (dispatching the next one),
with or without the trace: an op's time is its share of the call (`attribution.timeline_shares`).
"""

import dataclasses
import glob
import os
import re
import shutil
import tempfile
import time

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


class TensorFlowTrace:
    """TensorFlow's profiler around single calls of `run`: `run()` traces one call; `rounds(skip)` returns them.

    Each call is traced on its own (start, call, stop), so the untraced whole-model runs between
    them run as they always do. Ops that only call a function (`CONTAINER_OPS`) are left out: the
    ops of the function are in the trace themselves. The executor's part of a call is the span
    from its first op's start to its last op's end.
    """

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
