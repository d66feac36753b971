"""A Profile as a rich table, CSV text or a PNG bar chart, and beside published figures; atomic files.

Nothing here prints: the table is returned as a rich renderable for the caller
(the CLI) to print.
"""

import csv
import dataclasses
import io
from collections.abc import Sequence

from mobilenet_sep.profiler.counting import HEADLINE_KINDS, KINDS, Profile
from mobilenet_sep.utils.files import save_figure, write_atomically

CSV_FIELDS = (
    "name",
    "kind",
    "layer_class",
    "input_shape",
    "output_shape",
    "kernel",
    "stride",
    "dilation",
    "mult_adds",
    "flops",
    "params",
    "kernel_weights",
    "in_total",
    "note",
)

KIND_COLOURS = {
    "standard": "#d62728",
    "depthwise": "#2ca02c",
    "pointwise": "#1f77b4",
    "dense": "#9467bd",
    "other": "#7f7f7f",
}


@dataclasses.dataclass(frozen=True)
class PublishedFigure:
    """A printed mult-adds figure beside the exact count; `agrees` when the exact count rounds to it."""

    source: str
    printed_mult_adds_millions: float
    exact_mult_adds_millions: float
    printed_params_millions: float | None
    exact_params_millions: float

    @property
    def agrees(self):
        return round(self.exact_mult_adds_millions) == round(self.printed_mult_adds_millions)


def compare_published(profile: Profile, published: dict) -> list[PublishedFigure]:
    """`published` as a zoo entry holds it ({source: {mult_adds_millions, params_millions, ...}})."""
    return [
        PublishedFigure(
            source,
            figures["mult_adds_millions"],
            profile.mult_adds / 1e6,
            figures.get("params_millions"),
            profile.params / 1e6,
        )
        for source, figures in published.items()
        if "mult_adds_millions" in figures
    ]


def _dims(values):
    """(112, 112, 32) -> "112x112x32"; several shapes joined by ";"; None -> ""."""
    if values is None:
        return ""
    if values and isinstance(values[0], tuple):
        return ";".join(_dims(value) for value in values)
    return "x".join(str(value) for value in values)


def to_csv(profile: Profile, path: str | None = None) -> str:
    """One line per row, shapes as HxWxC; written atomically to `path` if given. Returns the text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in profile.rows:
        record = row.to_dict()
        for field in ("input_shape", "output_shape", "kernel", "stride", "dilation"):
            record[field] = _dims(record[field])
        writer.writerow({field: record[field] for field in CSV_FIELDS})
    text = buffer.getvalue()
    if path is not None:
        write_atomically({path: text})
    return text


def _millions(count):
    return f"{count / 1e6:,.2f} M"


def to_table(profile: Profile, published: Sequence[PublishedFigure] = ()):
    """Rows, then totals, shares by kind and the published figures (`compare_published` output) if any."""
    from rich.console import Group
    from rich.table import Table

    layers = Table(title=f"{profile.model_name}  input {_dims(profile.input_shape)}", title_justify="left")
    for column in ("layer", "kind", "input", "output", "kernel", "stride", "dilation", "mult-adds", "params", "note"):
        layers.add_column(column, justify="right" if column in ("mult-adds", "params") else "left")
    for row in profile.rows:
        style = None if row.in_total else ("yellow" if row.kind == "other" else "dim")
        layers.add_row(
            row.name,
            row.kind,
            _dims(row.input_shape),
            _dims(row.output_shape),
            _dims(row.kernel),
            _dims(row.stride),
            _dims(row.dilation),
            f"{row.mult_adds:,}",
            f"{row.params:,}",
            row.note,
            style=style,
        )
    layers.add_section()
    for label, mult_adds, params in (
        ("total: conv + dense", profile.mult_adds, profile.params),
        ("FLOPs (2 x mult-adds)", profile.flops, None),
        ("other ops, not in total", profile.auxiliary_ops, None),
    ):
        layers.add_row(label, "", "", "", "", "", "", f"{mult_adds:,}", "" if params is None else f"{params:,}", "")

    kinds = Table(title="by kind (% of the total; weights: conv and dense kernels, as paper Table 2)")
    for column in ("kind", "layers", "mult-adds", "% mult-adds", "kernel weights", "% weights", "params"):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, totals in profile.by_kind().items():
        shares = (totals["mult_adds_percent"], totals["kernel_weights_percent"]) if kind in HEADLINE_KINDS else ()
        share_text = [f"{share:.2f}" for share in shares] or ["-", "-"]
        kinds.add_row(
            kind,
            str(totals["layers"]),
            f"{totals['mult_adds']:,}",
            share_text[0],
            f"{totals['kernel_weights']:,}",
            share_text[1],
            f"{totals['params']:,}",
            style=None if kind in HEADLINE_KINDS else "dim",
        )
    renderables = [layers, kinds]
    if published:
        figures = Table(title="published figures beside the exact count")
        for column in (
            "source",
            "printed mult-adds",
            "exact mult-adds",
            "rounds to printed",
            "printed params",
            "exact params",
        ):
            figures.add_column(column, justify="left" if column == "source" else "right")
        for figure in published:
            printed_params = figure.printed_params_millions
            figures.add_row(
                figure.source,
                f"{figure.printed_mult_adds_millions:g} M",
                f"{figure.exact_mult_adds_millions:,.2f} M",
                "yes" if figure.agrees else "no",
                "-" if printed_params is None else f"{printed_params:g} M",
                f"{figure.exact_params_millions:.3f} M",
            )
        renderables.append(figures)
    return Group(*renderables)


def to_png(profile: Profile, path: str) -> str:
    """Mult-adds and parameters of each conv/dense layer (and uncounted `other` layer), coloured by kind.

    A bare matplotlib Figure renders the PNG with Agg without touching pyplot's global backend.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = [row for row in profile.rows if row.in_total or row.kind == "other"]
    if not rows:
        raise ValueError(f"Nothing to plot: no conv, dense or uncounted layers. Received: model={profile.model_name!r}")
    figure = Figure(figsize=(max(8.0, 0.3 * len(rows)), 8.0), layout="constrained")
    mult_adds_axes, params_axes = figure.subplots(2, 1, sharex=True)
    positions = range(len(rows))
    colours = [KIND_COLOURS.get(row.kind, KIND_COLOURS["other"]) for row in rows]
    mult_adds_axes.bar(positions, [row.mult_adds / 1e6 for row in rows], color=colours)
    mult_adds_axes.set_ylabel("mult-adds (millions)")
    mult_adds_axes.set_title(
        f"{profile.model_name}: {profile.mult_adds / 1e6:,.1f} M mult-adds, {profile.params:,} params"
    )
    params_axes.bar(positions, [row.params / 1e3 for row in rows], color=colours)
    params_axes.set_ylabel("parameters (thousands)")
    params_axes.set_xticks(list(positions), [row.name for row in rows], rotation=90, fontsize=7)
    present = [kind for kind in KINDS if kind in KIND_COLOURS and any(row.kind == kind for row in rows)]
    handles = [Patch(color=KIND_COLOURS[kind], label=kind) for kind in present]
    mult_adds_axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(figure, path)
