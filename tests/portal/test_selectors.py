"""The portal's own reads: daily usage, and the period rules."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from inference.selectors import usage_total
from portal.periods import (
    DashboardPeriodError,
    chart_bucket,
    dashboard_period_parse,
    intensity_bucket,
)
from portal.selectors import usage_daily
from tenants.scope import tenant_scope

NOW = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_usage_daily_sums_to_the_ledger_totals(make_tenant, make_variant, add_usage):
    tenant = make_tenant()
    default = make_variant(name="base", energy_per_1k_uj=9_000_000, make_default=True)
    cheap = make_variant(name="cheap", energy_per_1k_uj=2_000_001)
    hour = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [(cheap, "efficiency", 1_234_567), (cheap, "efficiency", 1), (default, "efficiency", 5_000),
            (cheap, "standard", 10_000), (default, "standard", 3)]
    for i, (variant, mode, predictions) in enumerate(rows):
        add_usage(tenant, variant, hour.replace(hour=i), mode=mode, predictions=predictions, energy_uj=1_000 + i,
                  co2e_ug=7 * i, embodied_co2e_ug=i)
    add_usage(tenant, cheap, hour.replace(day=2), mode="efficiency", predictions=9)
    add_usage(tenant, cheap, hour.replace(month=12), mode="efficiency", predictions=9)  # outside the period
    end = datetime(2026, 12, 1, tzinfo=UTC)
    with tenant_scope(tenant.id):
        daily = usage_daily(tenant=tenant, start=hour, end=end)
        usage = usage_total(tenant=tenant, start=hour, end=end)
    assert len(daily) == 5  # day 1: four variant/mode pairs; day 2: one
    assert usage.predictions == sum(r[2] for r in rows) + 9
    assert [sum(getattr(r, f) for r in daily) for f in ("predictions", "requests", "energy_uj", "co2e_ug",
                                                         "embodied_co2e_ug")] == [
        usage.predictions, usage.requests, usage.energy_uj, usage.co2e_ug, usage.embodied_co2e_ug]


@pytest.mark.parametrize(("p", "first", "last", "kind", "start", "end", "title"), [
    (None, None, None, "month", datetime(2026, 12, 1), datetime(2027, 1, 1), "December 2026"),
    ("2026-02", None, None, "month", datetime(2026, 2, 1), datetime(2026, 3, 1), "February 2026"),
    ("2026-Q4", None, None, "quarter", datetime(2026, 10, 1), datetime(2027, 1, 1), "Q4 2026"),
    ("2025", None, None, "year", datetime(2025, 1, 1), datetime(2026, 1, 1), "2025"),
    (None, "2026-10-05", "2026-11-20", "custom", datetime(2026, 10, 5), datetime(2026, 11, 21), "5 Oct – 20 Nov 2026"),
    (None, "2025-12-30", "2026-01-02", "custom", datetime(2025, 12, 30), datetime(2026, 1, 3),
     "30 Dec 2025 – 2 Jan 2026"),
])
def test_periods_parse(p, first, last, kind, start, end, title):
    period = dashboard_period_parse(p=p, first=first, last=last, now=NOW)
    assert (period.kind, period.start, period.end, period.title) == (kind, start.replace(tzinfo=UTC),
                                                                    end.replace(tzinfo=UTC), title)
    again = dashboard_period_parse(p=dict(x.split("=") for x in period.query.split("&")).get("p"),
                                   first=dict(x.split("=") for x in period.query.split("&")).get("from"),
                                   last=dict(x.split("=") for x in period.query.split("&")).get("to"), now=NOW)
    assert again == period  # the query string selects the same period


@pytest.mark.parametrize(("p", "first", "last", "message"), [
    ("2026-13", None, None, "no such month"), ("2026-Q5", None, None, "must be a month"),
    ("1999", None, None, "no such year"), ("next week", None, None, "must be a month"),
    (None, "2026-01-01", None, "needs both"), (None, "2026-02-30", "2026-03-01", "year-month-day"),
    (None, "2026-03-01", "2026-02-01", "ends before it starts"), (None, "2025-01-01", "2026-01-02", "at most 366"),
])
def test_bad_periods_say_what_to_send(p, first, last, message):
    with pytest.raises(DashboardPeriodError, match=message):
        dashboard_period_parse(p=p, first=first, last=last, now=NOW)


def test_previous_and_next():
    q1 = dashboard_period_parse(p="2026-Q1", first=None, last=None, now=NOW)
    assert q1.previous().title == "Q4 2025" and q1.next().title == "Q2 2026"
    jan = dashboard_period_parse(p="2026-01", first=None, last=None, now=NOW)
    assert jan.previous().query == "p=2025-12"
    custom = dashboard_period_parse(p=None, first="2026-11-01", last="2026-11-10", now=NOW)
    assert (custom.previous().start.date(), custom.previous().end.date()) == (date(2026, 10, 22), date(2026, 11, 1))
    assert dashboard_period_parse(p="2000-01", first=None, last=None, now=NOW).previous() is None


def test_chart_resolution_follows_the_length():
    def bucket(p=None, first=None, last=None):
        period = dashboard_period_parse(p=p, first=first, last=last, now=NOW)
        return chart_bucket(period), intensity_bucket(period)

    assert bucket("2026-02") == ("day", "hour")
    assert bucket("2026-Q3") == ("week", "day")
    assert bucket("2026") == ("month", "day")
    assert bucket(first="2026-01-01", last="2026-02-15") == ("day", "day")
