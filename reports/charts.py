"""Report charts: matplotlib figures as SVG text, embedded in the PDFs as data URIs.

Deterministic output (fixed hash salt, no date) so a report's bytes depend on its inputs
only. Text stays text (svg.fonttype "none") and is set in the report's own font by
WeasyPrint. Uses the object-oriented Figure API, never pyplot's global state, so charts
can be drawn from several threads.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import datetime, timedelta

import matplotlib

matplotlib.use("Agg")  # no display; must precede any pyplot import elsewhere in the process

from matplotlib import dates as mdates  # noqa: E402
from matplotlib import rc_context  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, PathPatch  # noqa: E402
from matplotlib.path import Path  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
GREEN = "#15803d"
GREEN_LIGHT = "#86efac"
GREY = "#9ca3af"
MODE_COLOURS = {"standard": "#334155", "efficiency": "#16a34a", "accurate": "#0284c7", "batch": "#a16207"}

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "greentier-reports",
    # Explicit families, no generic: matplotlib then falls back glyph by glyph (CO₂ needs
    # DejaVu's subscript two) and the list written on every SVG text element stays short.
    "font.family": ["Liberation Sans", "DejaVu Sans"],
    "font.size": 8,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.major.size": 0,
    "ytick.major.size": 0,
    "legend.frameon": False,
    "legend.fontsize": 7.5,
    "path.simplify": False,  # keeps the zero-length strokes that draw dots
}


def _svg(fig: Figure) -> str:
    # Fixed margins (subplots_adjust in each chart) rather than bbox_inches="tight", which
    # draws every figure twice: charts are about a third of a report's rendering time.
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    return buffer.getvalue()


# WeasyPrint draws an SVG node by node, each with its own inline style to parse, and the
# charts' nodes were a third of a report's rendering time. So each series is one path:
# all bars of a series one compound path, all dots of a series one path of round-capped
# zero-length strokes (a PDF paints those as filled circles), instead of one node per
# bar or marker.


def _bars(ax, xs: Sequence[float], heights: Sequence[float], *, bottoms: Sequence[float] | None = None,
          width: float, horizontal: bool = False, **style) -> None:
    verts, codes = [], []
    for i, (x, h) in enumerate(zip(xs, heights, strict=True)):
        b = bottoms[i] if bottoms is not None else 0
        if not h:
            continue
        corners = [(x - width / 2, b), (x + width / 2, b), (x + width / 2, b + h), (x - width / 2, b + h)]
        if horizontal:
            corners = [(v, u) for u, v in corners]
        verts += [*corners, corners[0]]
        codes += [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
    if verts:
        ax.add_patch(PathPatch(Path(verts, codes), linewidth=0, edgecolor="none", **style))


def _dots(ax, xs: Sequence, ys: Sequence[float], *, size: float, color: str, zorder: int) -> None:
    px, py = [], []
    for x, y in zip(xs, ys, strict=True):
        px += [x, x, x]
        py += [y, y, float("nan")]  # a NaN y breaks the path between dots
    ax.plot(px, py, color=color, linewidth=size, solid_capstyle="round", zorder=zorder)


def _dot_handle(color: str, label: str, size: float) -> Line2D:
    return Line2D([], [], linestyle="none", marker="o", markersize=size, color=color, label=label)


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _thousands(value: float, _pos=None) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def monthly_co2e_chart(*, labels: Sequence[str], operational: Sequence[float], embodied: Sequence[float],
                       unit: str) -> str:
    """Stacked bars per month: operational (E x I) and embodied (M) CO2e, in `unit`."""
    with rc_context(_RC):
        fig = Figure(figsize=(6.9, 2.5))
        fig.subplots_adjust(left=0.085, right=0.995, top=0.86, bottom=0.1)
        ax = fig.add_subplot()
        x = list(range(len(labels)))
        _bars(ax, x, operational, width=0.62, facecolor=GREEN)
        _bars(ax, x, embodied, bottoms=operational, width=0.62, facecolor=GREEN_LIGHT)
        top = max([o + e for o, e in zip(operational, embodied, strict=True)] + [0])
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_ylim(0, top * 1.05 or 1)
        ax.set_xticks(x, labels)
        ax.set_ylabel(f"CO₂e ({unit})")
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(handles=[Patch(color=GREEN, label="Operational (energy × grid intensity)"),
                           Patch(color=GREEN_LIGHT, label="Embodied (hardware share)")],
                  loc="upper left", bbox_to_anchor=(0, 1.16), ncols=2)
        return _svg(fig)


def energy_by_variant_chart(*, rows: Sequence[tuple[str, str, float]], unit: str) -> str:
    """Horizontal bars of energy per model variant, one colour per mode (or batch)."""
    with rc_context(_RC):
        height = 0.75 + 0.3 * max(len(rows), 1)
        fig = Figure(figsize=(6.9, height))
        # Room for the longest label at 8 pt (about 0.062 in per character).
        label_inches = 0.2 + 0.062 * max([len(label) for label, _, _ in rows] + [4])
        fig.subplots_adjust(left=min(label_inches / 6.9, 0.5), right=0.99, top=1 - 0.1 / height,
                            bottom=0.55 / height)
        ax = fig.add_subplot()
        labels = [label for label, _, _ in rows]
        values = [value for _, _, value in rows]
        colours = [MODE_COLOURS.get(mode, GREY) for _, mode, _ in rows]
        y = list(range(len(rows)))[::-1]
        for colour in dict.fromkeys(colours):
            picked = [i for i, c in enumerate(colours) if c == colour]
            _bars(ax, [y[i] for i in picked], [values[i] for i in picked], width=0.6, horizontal=True,
                  facecolor=colour)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_xlim(0, max(values + [0]) * 1.05 or 1)
        ax.set_yticks(y, labels)
        ax.set_xlabel(f"Energy ({unit})")
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.grid(axis="x", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        seen = []
        for _, mode, _ in rows:
            if mode not in seen:
                seen.append(mode)
        handles = [Patch(color=MODE_COLOURS.get(m, GREY), label=m) for m in seen]
        ax.legend(handles=handles, loc="lower right")
        return _svg(fig)


def batch_intensity_chart(*, starts: Sequence[datetime], run_now: Sequence[float], planned: Sequence[float],
                          start: datetime, end: datetime) -> str:
    """Per green-tier batch job: the grid intensity of running at once (grey) and of the
    planned window (green), joined by a line: the drop is what scheduling avoided."""
    with rc_context(_RC):
        fig = Figure(figsize=(6.9, 2.45))
        fig.subplots_adjust(left=0.085, right=0.995, top=0.86, bottom=0.1)
        ax = fig.add_subplot()
        # One path for all connectors (NaN-separated) and one per colour of dots, rather
        # than vlines/scatter/markers (one SVG node per job each).
        xs, ys = [], []
        for when, now_value, planned_value in zip(starts, run_now, planned, strict=True):
            xs += [when, when, when]
            ys += [now_value, planned_value, float("nan")]
        ax.plot(xs, ys, color="#d1d5db", linewidth=1.2, zorder=1)
        _dots(ax, starts, run_now, size=3.4, color=GREY, zorder=2)
        _dots(ax, starts, planned, size=3.4, color=GREEN, zorder=3)
        ax.set_ylabel("gCO₂e/kWh")
        ax.tick_params(axis="x", pad=5)
        ax.set_ylim(bottom=0)
        ax.set_xlim(start, end - timedelta(hours=1))  # no tick for the month after the period
        ax.xaxis.set_major_locator(mdates.MonthLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(handles=[_dot_handle(GREY, "Run now (counterfactual)", 3.4),
                           _dot_handle(GREEN, "Planned window (as run)", 3.4)],
                  loc="upper left", bbox_to_anchor=(0, 1.16), ncols=2)
        return _svg(fig)
