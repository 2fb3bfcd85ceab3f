"""Bucketed means of the stored history: one series, gaps stay gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from carbon.history import history_bucket_means
from carbon.models import GridIntensity

H = timedelta(hours=1)
DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


def _store(values, *, start=DAY0, step=H, source="hourly", kind="lifecycle"):
    GridIntensity.objects.bulk_create(
        GridIntensity(zone="DE", start=start + i * step, end=start + (i + 1) * step, intensity_g_per_kwh=value,
                      kind=kind, source=source)
        for i, value in enumerate(values) if value is not None)


@pytest.mark.django_db
def test_daily_means_of_the_best_covered_series_with_gaps():
    day1 = [Decimal(100 + i) for i in range(24)]
    day3 = [Decimal("300.5")] * 12 + [None] * 12  # half a day stored
    _store(day1 + [None] * 24 + day3)
    _store([Decimal(999)] * 3, source="sparse")  # fewer points: not chosen, never mixed in
    found = history_bucket_means(zone="DE", start=DAY0, end=DAY0 + timedelta(days=3), bucket="day")
    assert (found.kind, found.source) == ("lifecycle", "hourly")
    assert found.means == {DAY0: sum(day1) / 24, DAY0 + timedelta(days=2): Decimal("300.5")}


@pytest.mark.django_db
def test_hourly_buckets_and_the_range_is_half_open():
    _store([Decimal(10), Decimal(20), Decimal(30)])
    found = history_bucket_means(zone="DE", start=DAY0 + H, end=DAY0 + 2 * H, bucket="hour")
    assert found.means == {DAY0 + H: Decimal(20)}


@pytest.mark.django_db
def test_nothing_stored_or_an_empty_range_is_none():
    assert history_bucket_means(zone="DE", start=DAY0, end=DAY0 + H, bucket="hour") is None
    _store([Decimal(10)])
    assert history_bucket_means(zone="DE", start=DAY0, end=DAY0, bucket="hour") is None
    with pytest.raises(ValueError, match="bucket must be"):
        history_bucket_means(zone="DE", start=DAY0, end=DAY0 + H, bucket="week")
