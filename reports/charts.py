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
from matplotlib.patches import Patch  # noqa: E402
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
}


def _svg(fig: Figure) -> str:
    # Fixed margins (subplots_adjust in each chart) rather than bbox_inches="tight", which
    # draws every figure twice: charts are about a third of a report's rendering time.
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    return buffer.getvalue()


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
        x = range(len(labels))
        ax.bar(x, operational, width=0.62, color=GREEN, label="Operational (energy × grid intensity)")
        ax.bar(x, embodied, width=0.62, bottom=operational, color=GREEN_LIGHT, label="Embodied (hardware share)")
        ax.set_xticks(list(x), labels)
        ax.set_ylabel(f"CO₂e ({unit})")
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="upper left", bbox_to_anchor=(0, 1.16), ncols=2)
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
        ax.barh(y, values, height=0.6, color=colours)
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
        # One path for all connectors (NaN-separated) and Line2D markers rather than
        # vlines/scatter: each of those becomes an SVG node with its own inline style,
        # which WeasyPrint parses one by one (a third of a report's drawing time).
        xs, ys = [], []
        for when, now_value, planned_value in zip(starts, run_now, planned, strict=True):
            xs += [when, when, when]
            ys += [now_value, planned_value, float("nan")]
        ax.plot(xs, ys, color="#d1d5db", linewidth=1.2, zorder=1)
        ax.plot(starts, run_now, linestyle="none", marker="o", markersize=3.4, color=GREY,
                label="Run now (counterfactual)", zorder=2)
        ax.plot(starts, planned, linestyle="none", marker="o", markersize=3.4, color=GREEN,
                label="Planned window (as run)", zorder=3)
        ax.set_ylabel("gCO₂e/kWh")
        ax.tick_params(axis="x", pad=5)
        ax.set_ylim(bottom=0)
        ax.set_xlim(start, end - timedelta(hours=1))  # no tick for the month after the period
        ax.xaxis.set_major_locator(mdates.MonthLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="upper left", bbox_to_anchor=(0, 1.16), ncols=2)
        return _svg(fig)
