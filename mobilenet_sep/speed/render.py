"""Comparisons as a rich table or a PNG bar chart (predicted vs measured speed-up), written atomically.

Nothing here prints: the table is returned as a rich renderable for the caller (the CLI) to print.
"""

from mobilenet_sep.speed.compare import Comparison
from mobilenet_sep.speed.stats import Spread
from mobilenet_sep.utils.files import save_figure

MEASURED_CAPTION = (
    "ms: median (25th-75th percentile); measured: standard / separable time, the median of the per-round "
    "ratios of alternating rounds (95 % interval)"
)


def spread_text(spread: Spread, digits: int = 2) -> str:
    """ "15.80 (15.61-16.02)": a median with its quartiles."""
    return f"{spread.median:.{digits}f} ({spread.p25:.{digits}f}-{spread.p75:.{digits}f})"


def comparison_table(comparison: Comparison):
    """A rich renderable: one row per runtime, the prediction beside each measurement."""
    from rich.table import Table

    title = (
        f"{comparison.subject}: standard {comparison.standard.mult_adds:,} vs separable {comparison.separable.mult_adds:,} "
        f"mult-adds, predicted speed-up {comparison.predicted_speedup:.2f}x"
    )
    if comparison.closed_form is not None:
        title += f" (closed form 1/N + 1/Dk^2 = {comparison.closed_form:.5f} -> {1 / comparison.closed_form:.2f}x)"
    table = Table(title=title, caption=MEASURED_CAPTION)
    columns = ("runtime", "batch", "threads", "rounds", "separable ms", "standard ms", "predicted", "measured", "note")
    for column in columns:
        table.add_column(column, justify="left" if column in ("runtime", "note") else "right")
    for ratio in comparison.ratios:
        separable_ms, standard_ms = ratio.milliseconds()
        table.add_row(
            ratio.runtime,
            str(ratio.separable.batch_size),
            str(ratio.separable.threads),
            str(len(ratio.separable.seconds)),
            spread_text(separable_ms),
            spread_text(standard_ms),
            f"{comparison.predicted_speedup:.2f}x",
            ratio.speedup.describe(),
            ratio.note,
        )
    return table


def comparison_plot(comparison: Comparison, path: str) -> str:
    """A PNG bar chart: predicted vs measured speed-up per runtime, written atomically."""
    from matplotlib.figure import Figure

    labels = [f"{ratio.runtime}\n(batch {ratio.separable.batch_size})" for ratio in comparison.ratios]
    positions = range(len(labels))
    figure = Figure(figsize=(max(6.0, 1.6 * len(labels)), 4.5), layout="constrained")
    axes = figure.subplots()
    width = 0.38
    axes.bar(
        [p - width / 2 for p in positions],
        [comparison.predicted_speedup] * len(labels),
        width,
        label="predicted (mult-adds)",
        color="#1f77b4",
    )
    speedups = [ratio.speedup for ratio in comparison.ratios]
    measured = axes.bar(
        [p + width / 2 for p in positions],
        [speedup.value for speedup in speedups],
        width,
        yerr=[[s.value - s.low for s in speedups], [s.high - s.value for s in speedups]],
        capsize=4,
        label="measured (median per-round ratio, 95 % interval)",
        color="#ff7f0e",
    )
    axes.bar_label(
        measured, [f"{s.value:.2f}x" if s.measurable else "no measurable\ndifference" for s in speedups], fontsize=8
    )
    axes.set_xticks(list(positions), labels)
    axes.set_ylabel("standard / separable")
    axes.set_title(f"{comparison.subject}: what separable convolution saves")
    axes.legend()
    return save_figure(figure, path)
