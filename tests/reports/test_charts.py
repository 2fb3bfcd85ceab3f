"""Chart SVGs stay small: their node count must not grow with the data (WeasyPrint draws
SVG node by node, which made the charts a third of a report's rendering time)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from reports import charts


def nodes(svg: str) -> int:
    return len(re.findall(r"<[a-zA-Z]", svg))


def test_batch_chart_nodes_do_not_grow_with_jobs():
    start = datetime(2025, 1, 1, tzinfo=UTC)

    def chart(jobs: int) -> str:
        starts = [start + timedelta(days=3 * i) for i in range(jobs)]
        return charts.batch_intensity_chart(starts=starts, run_now=[200.0 + i % 50 for i in range(jobs)],
                                            planned=[120.0 + i % 40 for i in range(jobs)], start=start,
                                            end=datetime(2026, 1, 1, tzinfo=UTC))

    few, many = chart(5), chart(120)
    # Only axis ticks may differ (a few nodes each); one node per job would add 230.
    assert abs(nodes(many) - nodes(few)) < 20
    assert many.count("stroke-linecap: round") >= 2  # the dots: one round-capped path per colour


def test_bar_charts_draw_one_path_per_series():
    labels = [f"M{i}" for i in range(12)]
    monthly = charts.monthly_co2e_chart(labels=labels, operational=[10.0 + i for i in range(12)],
                                        embodied=[5.0] * 12, unit="g")
    one_bar = charts.monthly_co2e_chart(labels=labels, operational=[0.0] * 11 + [30.0], embodied=[0.0] * 12,
                                        unit="g")
    assert abs(nodes(monthly) - nodes(one_bar)) < 20  # 23 more bars, no more nodes (ticks aside)
    rows = [(f"family / v{i}", "standard" if i % 2 else "efficiency", float(i + 1)) for i in range(8)]
    by_variant = charts.energy_by_variant_chart(rows=rows, unit="kWh")
    two = charts.energy_by_variant_chart(rows=rows[:2], unit="kWh")
    # Labels add nodes (one text per row), bars do not: two colours, two paths.
    assert nodes(by_variant) - nodes(two) <= 6 * 4


def test_empty_data_still_draws():
    assert "<svg" in charts.monthly_co2e_chart(labels=["Jan"], operational=[0.0], embodied=[0.0], unit="g")
    assert "<svg" in charts.energy_by_variant_chart(rows=[], unit="kWh")
