"""Reads of the stored history (GridIntensity), one series at a time.

A zone can hold several series (kind x source). A read never mixes them: it picks the
series with the most points in the range, then the preferred kind
(CARBON_PREFERRED_KIND), then the most recent import, then the source name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Avg, Count, Max
from django.db.models.functions import Trunc

from carbon import conf
from carbon.models import MAX_POINT_DURATION, GridIntensity
from carbon.types import IntensityPoint


def _overlapping(*, zone: str, start: datetime, end: datetime, kind: str | None):
    # start > start - MAX_POINT_DURATION bounds the index scan from below.
    qs = GridIntensity.objects.filter(zone=zone, start__lt=end, start__gt=start - MAX_POINT_DURATION, end__gt=start)
    return qs.filter(kind=kind) if kind else qs


def history_series_choose(*, zone: str, start: datetime, end: datetime,
                          kind: str | None = None) -> tuple[str, str] | None:
    """(kind, source) of the series that best covers [start, end), or None if none does."""
    stats = list(
        _overlapping(zone=zone, start=start, end=end, kind=kind)
        .values("kind", "source")
        .annotate(n=Count("id"), last_import=Max("imported_at"))
    )
    if not stats:
        return None
    preferred = conf.preferred_kind()
    best = min(stats, key=lambda s: (-s["n"], s["kind"] != preferred, -s["last_import"].timestamp(), s["source"]))
    return best["kind"], best["source"]


def history_points(*, zone: str, start: datetime, end: datetime, kind: str | None = None) -> list[IntensityPoint]:
    """Stored points of one series overlapping [start, end), in time order."""
    series = history_series_choose(zone=zone, start=start, end=end, kind=kind)
    if series is None:
        return []
    series_kind, source = series
    rows = (
        _overlapping(zone=zone, start=start, end=end, kind=series_kind)
        .filter(source=source)
        .order_by("start")
        .values_list("start", "end", "intensity_g_per_kwh")
    )
    points: list[IntensityPoint] = []
    for row_start, row_end, value in rows:
        # Imports of one source never overlap themselves, but two files imported under
        # one source name could; the earlier point wins rather than double-counting.
        if points and row_start < points[-1].end:
            continue
        points.append(IntensityPoint(start=row_start, end=row_end, g_per_kwh=value, kind=series_kind, source=source))
    return points


@dataclass(frozen=True)
class BucketMeans:
    """One stored series' mean intensity per hour or day; buckets without data are absent."""

    kind: str
    source: str
    means: dict[datetime, Decimal]  # bucket start (UTC) -> mean g/kWh


def history_bucket_means(*, zone: str, start: datetime, end: datetime, bucket: str) -> BucketMeans | None:
    """Means per `bucket` ("hour" or "day", UTC) of the series that best covers [start, end),
    averaged in the database over the points starting in the range; None if nothing is stored."""
    if bucket not in ("hour", "day"):
        raise ValueError(f"bucket must be 'hour' or 'day', not {bucket!r}")
    series = history_series_choose(zone=zone, start=start, end=end) if start < end else None
    if series is None:
        return None
    kind, source = series
    rows = (GridIntensity.objects.filter(zone=zone, kind=kind, source=source, start__gte=start, start__lt=end)
            .annotate(bucket=Trunc("start", bucket, tzinfo=UTC)).values("bucket")
            .annotate(mean=Avg("intensity_g_per_kwh")).order_by("bucket").values_list("bucket", "mean"))
    return BucketMeans(kind=kind, source=source,
                       means={moment.astimezone(UTC): Decimal(mean) for moment, mean in rows})
