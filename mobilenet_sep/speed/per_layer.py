"""Why 8.5x fewer mult-adds is not 8.5x faster: each layer's exact count beside its measured time and this
machine's ceilings, per runtime.

`compare_per_layer(separable, standard)` measures each runtime's ceilings (`ceilings`), times both
models layer by layer in alternating rounds (`layer_timing`), and puts side by side, for every
layer: its mult-adds (the profiler's exact count), its minimum traffic, its arithmetic intensity,
its measured time, the GFLOP/s and GB/s it achieved and its roofline bound with the ceiling that
binds. By kind it gives the share of mult-adds against the share of time and each kind's time in
both models (the speed-up decomposed), and three speed-ups: predicted by mult-adds, predicted by
the roofline (its range from the ceilings' quartiles) and measured (the median of the per-round
ratios with its interval). A training step has no roofline: its arithmetic and traffic are not
the inference counts.
"""

import dataclasses
import statistics
import time

from mobilenet_sep.profiler import HEADLINE_KINDS, Profile, profile
from mobilenet_sep.speed import stats
from mobilenet_sep.speed.ceilings import measure_ceilings
from mobilenet_sep.speed.compare import LayerSpec, twin_pair
from mobilenet_sep.speed.layer_timing import METHODS, TOLERANCE, LayerTime, ModelTimes, time_layers
from mobilenet_sep.speed.roofline import Ceilings
from mobilenet_sep.speed.runtimes import PER_LAYER_RUNTIMES
from mobilenet_sep.utils import checks

KINDS = ("standard", "depthwise", "pointwise", "dense", "other")
CEILING_ROUNDS, CEILING_BUDGET_S = 10, 5.0
"""At most this many rounds and seconds for each runtime's ceilings: large steady ops, little spread."""


@dataclasses.dataclass(frozen=True)
class RuntimeLayers:
    """Both models on one runtime, layer by layer, with the runtime's ceilings (None: no roofline, training)."""

    runtime: str
    separable: ModelTimes
    standard: ModelTimes
    ceilings: Ceilings | None

    @property
    def measured_speedup(self) -> stats.Ratio:
        """Standard / separable whole-model time: the median of the per-round ratios, with its interval."""
        return stats.paired_ratio(self.standard.whole.seconds, self.separable.whole.seconds)

    def bound(self, row: LayerTime, peak=None, bandwidth=None):
        """(seconds, ceiling) of a row with a time of its own, or (None, None)."""
        has_own_time = row.timed or row.status.startswith("not timed")
        if self.ceilings is None or row.bytes is None or not has_own_time:
            return None, None
        return self.ceilings.bound(2 * row.mult_adds, row.bytes, peak, bandwidth)

    def roofline_ms(self, times: ModelTimes, peak=None, bandwidth=None) -> float | None:
        """The roofline's least time of a model: its rows' bounds added up."""
        if self.ceilings is None:
            return None
        return 1e3 * sum(self.bound(row, peak, bandwidth)[0] or 0.0 for row in times.layers)

    def roofline_speedup(self) -> dict | None:
        """Standard / separable roofline time at the median ceilings, with its range over the ceilings' quartiles."""
        if self.ceilings is None:
            return None
        ratios = [
            self.roofline_ms(self.standard, *corner) / self.roofline_ms(self.separable, *corner)
            for corner in self.ceilings.corners()
        ]
        value = self.roofline_ms(self.standard) / self.roofline_ms(self.separable)
        return {"value": value, "low": min(value, *ratios), "high": max(value, *ratios)}

    def row_dict(self, row: LayerTime) -> dict:
        seconds, ceiling = self.bound(row)
        spread = row.spread_ms
        achieved = self.ceilings is not None and row.timed and spread.median > 0
        return {
            "name": row.name,
            "kind": row.kind,
            "detail": row.detail,
            "mult_adds": row.mult_adds,
            "bytes": row.bytes,
            "intensity": row.intensity,
            "ms": row.ms,
            "ms_p25": spread.p25 if spread else None,
            "ms_p75": spread.p75 if spread else None,
            "kernel_ms": 1e3 * statistics.median(row.kernel_seconds) if row.kernel_seconds else None,
            "gflops": 2 * row.mult_adds / spread.median / 1e6 if achieved and row.mult_adds else None,
            "gbps": row.bytes / spread.median / 1e6 if achieved and row.bytes else None,
            "bound_ms": None if seconds is None else 1e3 * seconds,
            "bound": ceiling,
            "status": row.status,
            "ops": list(row.ops),
            "fused": list(row.fused),
        }

    def by_kind(self, times: ModelTimes) -> dict:
        """{kind: mult-adds, their share, measured ms, its share of the rows' time, median achieved GFLOP/s}."""
        rows = [self.row_dict(row) for row in times.layers]
        counted = sum(row["mult_adds"] for row in rows if row["kind"] in HEADLINE_KINDS)
        totals = {}
        for kind in KINDS:
            of_kind = [row for row in rows if row["kind"] == kind]
            if not of_kind:
                continue
            mult_adds = sum(row["mult_adds"] for row in of_kind) if kind in HEADLINE_KINDS else 0
            ms = sum(row["ms"] for row in of_kind if row["ms"] is not None)
            rates = [row["gflops"] for row in of_kind if row["gflops"] is not None]
            totals[kind] = {
                "layers": len(of_kind),
                "mult_adds": mult_adds,
                "mult_adds_share": mult_adds / counted if counted else 0.0,
                "ms": ms,
                "time_share": ms / times.layers_ms if times.layers_ms else 0.0,
                "median_gflops": statistics.median(rates) if rates else None,
            }
        return totals

    def model_dict(self, times: ModelTimes) -> dict:
        return {
            "model": times.model,
            "whole_model_ms": times.whole_ms.median,
            "whole_model": times.whole_ms.to_dict(),
            "layers_ms": times.layers_ms,
            "attribution": times.attribution,
            "adds_up": times.adds_up,
            "tolerance": TOLERANCE,
            "round_attribution": times.round_attribution.to_dict(),
            "untimed": times.untimed,
            "roofline_ms": self.roofline_ms(times),
            "by_kind": self.by_kind(times),
            "note": times.whole.note,
            "layers": [self.row_dict(row) for row in times.layers],
        }

    def summary(self, predicted: float) -> dict:
        """The figures the closing note quotes: ceilings, depthwise's shares, median rates, the three speed-ups."""
        separable, standard = self.by_kind(self.separable), self.by_kind(self.standard)
        depthwise = separable.get("depthwise", {})
        return {
            "ceilings": None
            if self.ceilings is None
            else {"gflops": self.ceilings.gflops.median, "gbps": self.ceilings.gbps.median},
            "depthwise_mult_adds_share": depthwise.get("mult_adds_share"),
            "depthwise_time_share": depthwise.get("time_share"),
            "median_gflops": {
                "pointwise": separable.get("pointwise", {}).get("median_gflops"),
                "depthwise": depthwise.get("median_gflops"),
                "standard_twin": standard.get("standard", {}).get("median_gflops"),
            },
            "speedups": {
                "mult_adds": predicted,
                "roofline": self.roofline_speedup(),
                "measured": self.measured_speedup.to_dict(),
                "attributed": self.standard.layers_ms / self.separable.layers_ms,
            },
        }


@dataclasses.dataclass(frozen=True)
class PerLayerComparison:
    """A separable model and its standard twin, layer by layer on each runtime (`RuntimeLayers`)."""

    subject: str
    separable: Profile
    standard: Profile
    runtimes: tuple
    wall_seconds: float
    closed_form: float | None = None

    @property
    def predicted_speedup(self) -> float:
        """Standard / separable mult-adds."""
        return self.standard.mult_adds / self.separable.mult_adds

    def runtime(self, name: str) -> RuntimeLayers:
        return next(result for result in self.runtimes if result.runtime == name)

    def to_dict(self) -> dict:
        first = self.runtimes[0].separable.whole
        return {
            "subject": self.subject,
            "separable": {"model": self.separable.model_name, "mult_adds": self.separable.mult_adds},
            "standard": {"model": self.standard.model_name, "mult_adds": self.standard.mult_adds},
            "predicted_speedup": self.predicted_speedup,
            "closed_form_speedup": None if self.closed_form is None else 1 / self.closed_form,
            "batch_size": first.batch_size,
            "threads": first.threads,
            "warmup": first.warmup,
            "methods": {result.runtime: METHODS[result.runtime] for result in self.runtimes},
            "ceilings": {result.runtime: result.ceilings.to_dict() for result in self.runtimes if result.ceilings},
            "per_layer": {
                result.runtime: {
                    "separable": result.model_dict(result.separable),
                    "standard": result.model_dict(result.standard),
                }
                for result in self.runtimes
            },
            "summary": {result.runtime: result.summary(self.predicted_speedup) for result in self.runtimes},
            "wall_seconds": self.wall_seconds,
        }

    def csv_rows(self) -> list[dict]:
        """One row per layer, per model, per runtime."""
        rows = []
        for result in self.runtimes:
            for role, times in (("separable", result.separable), ("standard", result.standard)):
                for row in result.model_dict(times)["layers"]:
                    extra = {"ops": " ".join(row["ops"]), "fused": " ".join(row["fused"])}
                    rows.append({"runtime": result.runtime, "role": role, "model": times.model, **row, **extra})
        return rows


def compare_per_layer(
    separable,
    standard,
    *,
    subject=None,
    closed_form=None,
    runtimes=PER_LAYER_RUNTIMES,
    batch_size=1,
    threads=None,
    warmup=3,
    repeats=30,
    budget_s=20.0,
    ceilings=None,
    progress=None,
) -> PerLayerComparison:
    """Both models layer by layer on each runtime, with the runtime's ceilings (see the module docstring).

    `budget_s` bounds the rounds of each runtime (both models together) and of its ceilings.
    `ceilings` ({runtime: Ceilings}) reuses ceilings measured before on this machine; the others
    are measured now. Call `measure.set_tensorflow_threads(threads)` before building the models
    when the thread count matters.
    """
    runtimes = tuple(checks.choice(runtime, METHODS, "runtimes") for runtime in runtimes)
    options = {"threads": threads, "warmup": warmup, "progress": progress}
    ceiling_rounds = {"repeats": min(repeats, CEILING_ROUNDS), "budget_s": min(budget_s, CEILING_BUDGET_S)}
    started, results, known = time.perf_counter(), [], dict(ceilings or {})
    for runtime in runtimes:
        if runtime not in known:
            known[runtime] = None if runtime == "tf-train" else measure_ceilings(runtime, **options, **ceiling_rounds)
        times = time_layers(
            (separable, standard), runtime, batch_size=batch_size, repeats=repeats, budget_s=budget_s, **options
        )
        results.append(RuntimeLayers(runtime, *times, known[runtime]))
    elapsed = time.perf_counter() - started
    return PerLayerComparison(
        subject or separable.name, profile(separable), profile(standard), tuple(results), elapsed, closed_form
    )


def per_layer_with_twin(model, overrides=None, **options) -> PerLayerComparison:
    """`compare_per_layer` for a MobileNetV1 (zoo name, `.keras` file or built model) and its fair twin (`twin_pair`)."""
    separable, standard = twin_pair(model, overrides)
    return compare_per_layer(separable, standard, subject=separable.name, **options)


def per_layer_of_spec(spec, **options) -> PerLayerComparison:
    """`compare_per_layer` for one layer spec (a `LayerSpec` or its text): depthwise + pointwise against one convolution."""
    spec = spec if isinstance(spec, LayerSpec) else LayerSpec.parse(spec)
    separable, standard = spec.models()
    return compare_per_layer(separable, standard, subject=str(spec), closed_form=spec.closed_form, **options)
