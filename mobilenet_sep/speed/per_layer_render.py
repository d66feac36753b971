"""A per-layer comparison as rich tables, CSV, a roofline chart and a bar chart of measured vs roofline time.

Nothing here prints: tables are returned as rich renderables for the caller (the CLI) to print;
files are written atomically.
"""

import csv
import io
import os

from mobilenet_sep.speed.per_layer import KINDS, PerLayerComparison, RuntimeLayers
from mobilenet_sep.speed.render import spread_text
from mobilenet_sep.utils.files import save_figure, write_atomically

KIND_COLOURS = {
    "standard": "#d62728",
    "depthwise": "#1f77b4",
    "pointwise": "#2ca02c",
    "dense": "#9467bd",
    "other": "#7f7f7f",
}
CSV_COLUMNS = (
    "runtime", "role", "model", "name", "kind", "detail", "mult_adds", "bytes", "intensity", "ms", "ms_p25",
    "ms_p75", "kernel_ms", "gflops", "gbps", "bound_ms", "bound", "status", "ops", "fused",
)  # fmt: skip


def _number(value, digits=2):
    return "-" if value is None else f"{value:,.{digits}f}"


def summary_table(result: PerLayerComparison):
    """One row per runtime and model: ceilings, whole-model time against the rows' sum, the three speed-ups."""
    from rich.table import Table

    table = Table(
        title=f"{result.subject}: {result.predicted_speedup:.2f}x fewer mult-adds "
        f"({result.standard.mult_adds:,} / {result.separable.mult_adds:,})",
        caption="whole: median (25th-75th percentile) ms; layers: the sum of the per-layer medians; "
        "speed-ups standard / separable: mult-adds, roofline (range over the ceilings' quartiles), "
        "measured (median of per-round ratios, 95 % interval)",
    )
    for column in ("runtime", "ceilings", "model", "whole ms", "layers ms", "sum / whole", "roofline ms", "speed-ups"):
        table.add_column(column, justify="left" if column in ("runtime", "model", "ceilings", "speed-ups") else "right")
    for runtime in result.runtimes:
        summary = runtime.summary(result.predicted_speedup)["speedups"]
        roofline = summary["roofline"]
        ceilings = (
            "no roofline"
            if runtime.ceilings is None
            else (
                f"{runtime.ceilings.gflops.median:.1f} {runtime.ceilings.unit}, {runtime.ceilings.gbps.median:.1f} GB/s"
            )
        )
        speedups = [
            f"mult-adds {summary['mult_adds']:.2f}x",
            "roofline -"
            if roofline is None
            else f"roofline {roofline['value']:.2f}x ({roofline['low']:.2f}-{roofline['high']:.2f})",
            f"measured {runtime.measured_speedup.describe()}",
        ]
        for index, times in enumerate((runtime.separable, runtime.standard)):
            adds_up = "" if times.adds_up else " (outside 15 %)"
            table.add_row(
                runtime.runtime if index == 0 else "",
                ceilings if index == 0 else "",
                times.model,
                spread_text(times.whole_ms),
                f"{times.layers_ms:.2f}",
                f"{times.attribution:.2f}{adds_up}",
                _number(runtime.roofline_ms(times)),
                speedups[index] if index == 0 else "; ".join(speedups[1:]),
            )
    return table


def summary_rows(result: PerLayerComparison, section: str = "per layer") -> list[tuple[str, str, str]]:
    """(section, item, value) rows per runtime: ceilings, the 15 % rule, depthwise's shares, the three speed-ups."""
    rows = []
    for runtime in result.runtimes:
        name, summary = runtime.runtime, runtime.summary(result.predicted_speedup)
        if runtime.ceilings is not None:
            ceilings = (
                f"{runtime.ceilings.gflops.median:.1f} {runtime.ceilings.unit}, {runtime.ceilings.gbps.median:.1f} GB/s"
            )
            rows.append((section, f"{name}: ceilings (peak, bandwidth)", ceilings))
        sums = " | ".join(
            f"{times.layers_ms:.2f} / {times.whole_ms.median:.2f} ms ({times.attribution:.2f})"
            for times in (runtime.separable, runtime.standard)
        )
        rows.append((section, f"{name}: layers summed / whole model, model | twin", sums))
        shares = f"{_number(100 * (summary['depthwise_mult_adds_share'] or 0), 1)} % / "
        shares += f"{_number(100 * (summary['depthwise_time_share'] or 0), 1)} %"
        rows.append((section, f"{name}: depthwise share of mult-adds / of time", shares))
        speedups, roofline = summary["speedups"], summary["speedups"]["roofline"]
        roofline_text = (
            "-" if roofline is None else f"{roofline['value']:.2f}x ({roofline['low']:.2f}-{roofline['high']:.2f})"
        )
        value = f"{speedups['mult_adds']:.2f}x / {roofline_text} / {runtime.measured_speedup.describe()}"
        rows.append((section, f"{name}: speed-up by mult-adds / roofline / measured", value))
    return rows


def kind_table(result: PerLayerComparison):
    """By kind, per runtime: the share of mult-adds against the share of measured time, in both models."""
    from rich.table import Table

    table = Table(title="Where the mult-adds are and where the time goes, by kind (separable | standard twin)")
    for column in ("runtime", "kind", "mult-adds %", "time %", "ms", "median GFLOP/s"):
        table.add_column(column, justify="left" if column in ("runtime", "kind") else "right")
    for runtime in result.runtimes:
        separable, standard = runtime.by_kind(runtime.separable), runtime.by_kind(runtime.standard)
        for index, kind in enumerate(kind for kind in KINDS if kind in separable or kind in standard):
            cells = []
            for field, scale, digits in (
                ("mult_adds_share", 100, 1),
                ("time_share", 100, 1),
                ("ms", 1, 2),
                ("median_gflops", 1, 1),
            ):
                pair = [
                    None if kind not in side or side[kind][field] is None else scale * side[kind][field]
                    for side in (separable, standard)
                ]
                cells.append(" | ".join(_number(value, digits) for value in pair))
            table.add_row(runtime.runtime if index == 0 else "", kind, *cells)
    return table


def layer_table(runtime: RuntimeLayers, role: str):
    """Every row of one model on one runtime that has a time of its own (others are counted in the caption)."""
    from rich.table import Table

    times = runtime.separable if role == "separable" else runtime.standard
    rows = [runtime.row_dict(row) for row in times.layers]
    shown = [row for row in rows if row["ms"] is not None or row["status"].startswith("not timed")]
    hidden = len(rows) - len(shown)
    table = Table(
        title=f"{times.model} on {runtime.runtime}: {times.method}",
        caption=f"{hidden} rows without time of their own (fused into a convolution, or no op at run time) not shown",
    )
    columns = ("layer", "kind", "mult-adds", "bytes", "FLOP/B", "ms", "GFLOP/s", "GB/s", "bound ms", "bound", "status")
    for column in columns:
        table.add_column(column, justify="left" if column in ("layer", "kind", "bound", "status") else "right")
    for row in shown:
        table.add_row(
            row["name"],
            row["kind"],
            f"{row['mult_adds']:,}",
            "-" if row["bytes"] is None else f"{row['bytes']:,}",
            _number(row["intensity"], 1),
            _number(row["ms"], 3),
            _number(row["gflops"], 1),
            _number(row["gbps"], 1),
            _number(row["bound_ms"], 3),
            row["bound"] or "-",
            "" if row["status"] == "timed" else row["status"],
        )
    return table


def csv_text(result: PerLayerComparison) -> str:
    """One CSV row per layer, per model, per runtime."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.csv_rows())
    return buffer.getvalue()


def write_csv(result: PerLayerComparison, path: str) -> str:
    write_atomically({path: csv_text(result)})
    return os.fspath(path)


def layers_plot_path(path: str) -> str:
    """Where the bar chart goes beside the roofline chart at `path`: `x.png` -> `x_layers.png`."""
    stem, extension = os.path.splitext(os.fspath(path))
    return f"{stem}_layers{extension or '.png'}"


def roofline_plot(result: PerLayerComparison, path: str) -> str:
    """Each layer a point (intensity, achieved GFLOP/s), both ceilings drawn, colour by kind; one row per runtime."""
    from matplotlib.figure import Figure

    runtimes = [runtime for runtime in result.runtimes if runtime.ceilings is not None]
    figure = Figure(figsize=(11, 3.6 * max(len(runtimes), 1)), layout="constrained")
    grid = figure.subplots(max(len(runtimes), 1), 2, squeeze=False)
    for axes_row, runtime in zip(grid, runtimes, strict=False):
        for axes, times in zip(axes_row, (runtime.separable, runtime.standard), strict=True):
            points = [row for row in map(runtime.row_dict, times.layers) if row["gflops"] and row["intensity"]]
            ceilings = runtime.ceilings
            low = min([row["intensity"] for row in points] + [0.1])
            high = max([row["intensity"] for row in points] + [10 * ceilings.ridge])
            intensities = [low / 2, ceilings.ridge, high * 2]
            axes.plot(
                intensities, [min(ceilings.gflops.median, ceilings.gbps.median * i) for i in intensities], "k-", lw=1.5
            )
            axes.axvline(ceilings.ridge, color="k", ls=":", lw=0.8)
            for kind in KIND_COLOURS:
                of_kind = [row for row in points if row["kind"] == kind]
                if of_kind:
                    axes.scatter(
                        [row["intensity"] for row in of_kind],
                        [row["gflops"] for row in of_kind],
                        s=22,
                        color=KIND_COLOURS[kind],
                        label=kind,
                    )
            axes.set_xscale("log")
            axes.set_yscale("log")
            axes.set_title(f"{runtime.runtime}: {times.model}", fontsize=9)
            axes.set_xlabel("arithmetic intensity (FLOP / byte of minimum traffic)")
            axes.set_ylabel(f"achieved {ceilings.unit}")
            axes.legend(fontsize=7, loc="lower right")
            axes.text(
                0.02,
                0.95,
                f"peak {ceilings.gflops.median:.0f} {ceilings.unit}, {ceilings.gbps.median:.1f} GB/s",
                transform=axes.transAxes,
                fontsize=7,
                va="top",
            )
    return save_figure(figure, path)


def layers_plot(result: PerLayerComparison, path: str) -> str:
    """Per layer, measured time beside its roofline bound; one row per runtime, separable and twin side by side."""
    from matplotlib.figure import Figure

    runtimes = [runtime for runtime in result.runtimes if runtime.ceilings is not None]
    figure = Figure(figsize=(14, 3.4 * max(len(runtimes), 1)), layout="constrained")
    grid = figure.subplots(max(len(runtimes), 1), 2, squeeze=False)
    for axes_row, runtime in zip(grid, runtimes, strict=False):
        for axes, times in zip(axes_row, (runtime.separable, runtime.standard), strict=True):
            rows = [
                row
                for row in map(runtime.row_dict, times.layers)
                if row["ms"] is not None and row["bound_ms"] is not None
            ]
            positions = range(len(rows))
            axes.bar(
                [p - 0.2 for p in positions],
                [row["ms"] for row in rows],
                0.4,
                color=[KIND_COLOURS[row["kind"]] for row in rows],
                label="measured",
            )
            axes.bar(
                [p + 0.2 for p in positions],
                [row["bound_ms"] for row in rows],
                0.4,
                color="#bbbbbb",
                label="roofline bound",
            )
            axes.set_xticks(list(positions), [row["name"] for row in rows], rotation=90, fontsize=5)
            axes.set_ylabel("ms")
            axes.set_title(f"{runtime.runtime}: {times.model} (colour: kind; grey: roofline bound)", fontsize=9)
    return save_figure(figure, path)
