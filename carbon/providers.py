"""Grid-intensity providers behind one interface, and the chain each zone uses.

A provider answers `points(zone, start, end, kind)` with the intensity points it has
that overlap [start, end), in time order, all from one series (one kind and source).
It returns [] when it has nothing there, and raises ProviderError when it failed.
`kind=None` lets it choose; a kind asks for that kind only.

| name                | method          | data                                                  |
|---------------------|-----------------|-------------------------------------------------------|
| history             | history         | stored GridIntensity rows (import_grid_intensity)     |
| uk-carbon-intensity | live            | UK Carbon Intensity API, GB and GB-R1..GB-R17, direct |
| electricitymaps     | live            | Electricity Maps API (needs ELECTRICITYMAPS_TOKEN)    |
| seasonal-naive      | seasonal-naive  | stored values 1 week, else 1 day, ... earlier         |
| annual-average      | annual-average  | CodeCarbon's annual average for the zone              |
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta

from django.utils import timezone

from carbon import conf, electricitymaps, uk_carbon_intensity
from carbon.annual_averages import annual_average_lookup
from carbon.exceptions import ProviderError
from carbon.history import history_points
from carbon.types import (
    DIRECT,
    METHOD_ANNUAL_AVERAGE,
    METHOD_HISTORY,
    METHOD_LIVE,
    METHOD_SEASONAL_NAIVE,
    IntensityPoint,
)
from carbon.zones import zone_provider_chain


def _overlapping(points: list[IntensityPoint], start: datetime, end: datetime) -> list[IntensityPoint]:
    return [p for p in points if p.start < end and p.end > start]


class IntervalSet:
    """Disjoint [start, end) intervals; tells whether a new one would overlap any."""

    def __init__(self) -> None:
        self._starts: list[datetime] = []
        self._ends: list[datetime] = []

    def overlaps(self, start: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(self._starts, end)  # intervals starting before `end`
        return i > 0 and self._ends[i - 1] > start

    def add(self, start: datetime, end: datetime) -> None:
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)


class Provider:
    name: str
    method: str

    def unavailable_reason(self, *, zone: str) -> str | None:
        """Why this provider cannot serve the zone at all (None: it can try)."""
        return None

    def points(self, *, zone: str, start: datetime, end: datetime, kind: str | None = None) -> list[IntensityPoint]:
        raise NotImplementedError


class HistoryProvider(Provider):
    name, method = conf.HISTORY, METHOD_HISTORY

    def points(self, *, zone, start, end, kind=None):
        return history_points(zone=zone, start=start, end=end, kind=kind)


class UkCarbonIntensityProvider(Provider):
    name, method = conf.UK_CARBON_INTENSITY, METHOD_LIVE
    # A plan range is at most a few days; each request covers 48 h.
    MAX_REQUESTS = 4

    def unavailable_reason(self, *, zone):
        if zone not in conf.uk_region_zones():
            return f"{self.name} covers GB and its regions (GB-R1..GB-R17) only"
        return None

    def points(self, *, zone, start, end, kind=None):
        if kind not in (None, DIRECT):
            return []  # the API publishes direct (generation-only) intensity only
        region_id = conf.uk_region_zones()[zone]
        # The API forecasts up to 48 h past now; past ranges are served in 48 h pieces.
        horizon = timezone.now() + uk_carbon_intensity.HORIZON - uk_carbon_intensity.PERIOD
        collected: dict[datetime, IntensityPoint] = {}
        chunk_start = start
        for request in range(self.MAX_REQUESTS):
            try:
                chunk = uk_carbon_intensity.forecast_48h(start=chunk_start, region_id=region_id,
                                                         back_off=request == 0)
            except ProviderError:
                if request == 0:
                    raise
                break  # a follow-up piece failed: keep what the first one gave
            if not chunk:
                break
            for point in chunk:
                collected.setdefault(point.start, point)
            last_end = max(p.end for p in chunk)
            if last_end >= end or last_end <= chunk_start or last_end >= horizon:
                break
            chunk_start = last_end
        return _without_overlaps(_overlapping(sorted(collected.values(), key=lambda p: p.start), start, end))


class ElectricityMapsProvider(Provider):
    name, method = conf.ELECTRICITYMAPS, METHOD_LIVE
    HISTORY_SPAN = timedelta(hours=24)  # what /history returns

    def unavailable_reason(self, *, zone):
        if not conf.electricitymaps_token():
            return f"{self.name} skipped: ELECTRICITYMAPS_TOKEN is not set"
        return None

    def points(self, *, zone, start, end, kind=None):
        kind = kind or conf.preferred_kind()
        now = timezone.now()
        this_hour = now.replace(minute=0, second=0, microsecond=0)
        # Ask only for what the range needs: the current hour alone is one or two requests.
        batches: list[list[IntensityPoint]] = []
        if start < this_hour and end > now - self.HISTORY_SPAN:
            batches.append(electricitymaps.history_24h(zone=zone, kind=kind))
        if start < this_hour + timedelta(hours=1) and end > this_hour:
            latest = electricitymaps.latest(zone=zone, kind=kind)
            batches.append([latest] if latest else [])
        if end > now:
            batches.append(electricitymaps.forecast(zone=zone, kind=kind))
        collected: dict[datetime, IntensityPoint] = {}
        for batch in batches:  # measured values first: they win over the forecast
            for point in batch:
                if point.kind == kind:
                    collected.setdefault(point.start, point)
        return _without_overlaps(_overlapping(sorted(collected.values(), key=lambda p: p.start), start, end))


class SeasonalNaiveProvider(Provider):
    """Stored values shifted forward by whole weeks or days.

    For each instant: the value one week earlier, else one day earlier, else two
    weeks, two days, ... up to CARBON_SEASONAL_LOOKBACK_DAYS. One stored series is
    used (the one with most points in the look-back), so values are comparable.
    """

    name, method = conf.SEASONAL_NAIVE, METHOD_SEASONAL_NAIVE

    @staticmethod
    def lags(lookback_days: int) -> list[int]:
        weeks = [7 * w for w in range(1, lookback_days // 7 + 1)]
        days = [d for d in range(1, min(lookback_days, 6) + 1)]
        order: list[int] = []
        for i in range(max(len(weeks), len(days))):
            order += weeks[i:i + 1] + days[i:i + 1]
        return order

    def points(self, *, zone, start, end, kind=None):
        lookback = timedelta(days=conf.seasonal_lookback_days())
        history = history_points(zone=zone, start=start - lookback, end=end - timedelta(days=1), kind=kind)
        if not history:
            return []
        taken = IntervalSet()
        out: list[IntensityPoint] = []
        starts = [p.start for p in history]
        for lag_days in self.lags(lookback.days):
            lag = timedelta(days=lag_days)
            lo = bisect.bisect_left(starts, start - lag - timedelta(days=1))
            for point in history[lo:]:
                shifted_start, shifted_end = point.start + lag, point.end + lag
                if shifted_start >= end:
                    break
                if shifted_end <= start or taken.overlaps(shifted_start, shifted_end):
                    continue
                taken.add(shifted_start, shifted_end)
                out.append(IntensityPoint(
                    start=shifted_start, end=shifted_end, g_per_kwh=point.g_per_kwh, kind=point.kind,
                    source=f"{self.name}:{point.source}:-{lag_days}d", is_forecast=True,
                ))
        out.sort(key=lambda p: p.start)
        return out


class AnnualAverageProvider(Provider):
    name, method = conf.ANNUAL_AVERAGE, METHOD_ANNUAL_AVERAGE

    def points(self, *, zone, start, end, kind=None):
        average = annual_average_lookup(zone=zone)
        return [IntensityPoint(start=start, end=end, g_per_kwh=average.g_per_kwh, kind=average.kind,
                               source=average.source, is_average=True)]


def _without_overlaps(points: list[IntensityPoint]) -> list[IntensityPoint]:
    out: list[IntensityPoint] = []
    for point in points:
        if not out or point.start >= out[-1].end:
            out.append(point)
    return out


_PROVIDERS: dict[str, Provider] = {
    p.name: p for p in (HistoryProvider(), UkCarbonIntensityProvider(), ElectricityMapsProvider(),
                        SeasonalNaiveProvider(), AnnualAverageProvider())
}


def provider_get(name: str) -> Provider:
    return _PROVIDERS[name]


def provider_chain(*, zone: str) -> list[Provider]:
    """The zone's providers in order, always ending with the annual average (the last resort)."""
    names = zone_provider_chain(zone=zone)
    names = [n for n in names if n != conf.ANNUAL_AVERAGE] + [conf.ANNUAL_AVERAGE]
    return [_PROVIDERS[n] for n in names]
