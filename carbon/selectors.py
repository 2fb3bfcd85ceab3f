"""Reads for other apps: grid intensity of a zone, shaped like the GSF Carbon Aware SDK.

Current intensity, history for a range, forecast for a range, and the best window of a
given duration inside a range, in gCO2e/kWh. Each zone walks its provider chain
(CARBON_PROVIDERS; see carbon/providers.py) and the annual average is always the last
resort, so every call answers; nothing here invents intensity data: a value is either
stored, from a live provider, a seasonal-naive repeat of stored values, or the zone's
annual average, and every IntensityPoint says which.

All datetimes must be timezone-aware; results are in UTC.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np

from carbon import conf, windows
from carbon.annual_averages import annual_average_lookup
from carbon.exceptions import PlanningError, ProviderError
from carbon.providers import IntervalSet, Provider, provider_chain
from carbon.types import (
    METHOD_ANNUAL_AVERAGE,
    METHOD_HISTORY,
    METHOD_LIVE,
    METHOD_SEASONAL_NAIVE,
    Forecast,
    IntensityPoint,
    WindowPlan,
    quantize_g_per_kwh,
)
from carbon.zones import zone_validate

logger = logging.getLogger(__name__)

# Ranges longer than these are refused: a plan looks days ahead, a history read a year.
MAX_PLAN_RANGE = timedelta(days=31)
MAX_HISTORY_RANGE = timedelta(days=366)
HOUR = timedelta(hours=1)


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)


def _checked_range(start: datetime, end: datetime, longest: timedelta) -> tuple[datetime, datetime]:
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if end - start > longest:
        raise ValueError(f"the range is {end - start}; at most {longest} is allowed")
    return start, end


def _fmt(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


# --- current intensity ---------------------------------------------------------------


class _HourCache:
    """In-process cache of the points found for one zone and hour (metering asks for the
    same zone and hour over and over). Small TTL: stored history or a live forecast may
    change, and a stale value for a few minutes is harmless."""

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, datetime], tuple[float, list[IntensityPoint]]] = {}

    def get(self, key: tuple[str, datetime]) -> list[IntensityPoint] | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: tuple[str, datetime], points: list[IntensityPoint]) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + conf.intensity_cache_seconds(), points)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_hour_cache = _HourCache()


def intensity_cache_clear() -> None:
    """Forget the in-process intensity_at cache (tests; after an import in the same process)."""
    _hour_cache.clear()


def intensity_at(*, zone: str, at: datetime, allow_live: bool = True) -> IntensityPoint:
    """Intensity of `zone` at instant `at`: stored history if it covers `at`, else the
    provider chain (live, seasonal-naive), else the zone's annual average.

    allow_live=False skips providers that make network calls (for callers that must not
    wait on one, like the request path; they refresh live values in the background).
    Never raises for lack of data; raises InvalidZoneError / ValueError for bad input.
    """
    zone_validate(zone)
    at = _utc(at, "at")
    hour = at.replace(minute=0, second=0, microsecond=0)
    cached = _hour_cache.get((zone, hour))
    if cached is not None:
        for point in cached:
            if point.covers(at):
                return point
    for provider in provider_chain(zone=zone):
        if provider.unavailable_reason(zone=zone) or (not allow_live and provider.method == METHOD_LIVE):
            continue
        try:
            points = provider.points(zone=zone, start=hour, end=hour + HOUR)
        except ProviderError as exc:
            logger.warning("carbon: %s", exc)
            continue
        for point in points:
            if point.covers(at):
                _hour_cache.put((zone, hour), points)
                return point
    raise AssertionError("the annual-average provider always answers")  # pragma: no cover


def intensity_current(*, zone: str) -> IntensityPoint:
    """Intensity of `zone` now (see intensity_at)."""
    return intensity_at(zone=zone, at=datetime.now(timezone.utc))


def annual_average(*, zone: str) -> IntensityPoint:
    """The zone's annual average from CodeCarbon's data, as a point spanning its year.

    Unknown (but well-formed) zones get the world average, labelled in `source`.
    """
    average = annual_average_lookup(zone=zone)
    return IntensityPoint(
        start=datetime(average.year, 1, 1, tzinfo=timezone.utc),
        end=datetime(average.year + 1, 1, 1, tzinfo=timezone.utc),
        g_per_kwh=average.g_per_kwh, kind=average.kind, source=average.source, is_average=True,
    )


# --- history and forecast ------------------------------------------------------------


def intensity_history(*, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
    """Measured intensity overlapping [start, end): stored history, else a live provider's
    recent actuals. Forecasts and averages are never returned here; [] if nothing is known.
    """
    zone_validate(zone)
    start, end = _checked_range(start, end, MAX_HISTORY_RANGE)
    for provider in provider_chain(zone=zone):
        if provider.method not in (METHOD_HISTORY, METHOD_LIVE) or provider.unavailable_reason(zone=zone):
            continue
        try:
            points = [p for p in provider.points(zone=zone, start=start, end=end) if not p.is_forecast]
        except ProviderError as exc:
            logger.warning("carbon: %s", exc)
            continue
        if points:
            return points
    return []


def _forecast_candidates(zone: str, start: datetime, end: datetime) -> Iterator[Forecast]:
    """Forecasts for [start, end), best first, ending with the annual average.

    Each candidate takes one provider's points and fills the slots it leaves open with
    points of the same kind from the providers after it (never with the annual average:
    a flat average next to real data would show savings that do not exist).
    """
    chain = provider_chain(zone=zone)
    notes: list[str] = []
    fetched: dict[tuple[str, str | None], list[IntensityPoint] | ProviderError] = {}

    def fetch(provider: Provider, kind: str | None):
        key = (provider.name, kind)
        if key not in fetched:
            try:
                fetched[key] = provider.points(zone=zone, start=start, end=end, kind=kind)
            except ProviderError as exc:
                logger.warning("carbon: %s", exc)
                fetched[key] = exc
        return fetched[key]

    for i, provider in enumerate(chain):
        reason = provider.unavailable_reason(zone=zone)
        if reason:
            notes.append(reason)
            continue
        if provider.method == METHOD_ANNUAL_AVERAGE:
            points = provider.points(zone=zone, start=start, end=end)
            yield Forecast(zone=zone, start=start, end=end, points=tuple(points), provider=provider.name,
                           method=provider.method, kind=points[0].kind, notes=tuple(notes))
            return
        primary = fetch(provider, None)
        if isinstance(primary, ProviderError):
            notes.append(f"{provider.name} failed ({primary.reason})")
            continue
        if not primary:
            notes.append(f"{provider.name} has no data for {zone} in this range")
            continue
        kind = primary[0].kind
        taken = IntervalSet()
        for point in primary:
            taken.add(point.start, point.end)
        merged, filled_by = list(primary), []
        for other in chain[i + 1:]:
            if other.method == METHOD_ANNUAL_AVERAGE or other.unavailable_reason(zone=zone):
                continue
            extra = fetch(other, kind)
            if isinstance(extra, ProviderError):
                continue
            added = 0
            for point in extra:
                if not taken.overlaps(point.start, point.end):
                    taken.add(point.start, point.end)
                    merged.append(point)
                    added += 1
            if added:
                filled_by.append(other.name)
        merged.sort(key=lambda p: p.start)
        yield Forecast(zone=zone, start=start, end=end, points=tuple(merged), provider=provider.name,
                       method=provider.method, kind=kind, filled_by=tuple(filled_by), notes=tuple(notes))


def intensity_forecast(*, zone: str, start: datetime, end: datetime) -> Forecast:
    """Forecast for [start, end) from the first provider in the zone's chain that has data.

    Always answers: with no live or stored data it is the annual average
    (`is_annual_average`). A live forecast may cover only part of the range (the UK
    API looks 48 h ahead); uncovered slots are filled from same-kind providers later in
    the chain where they have data, else left without points.
    """
    zone_validate(zone)
    start, end = _checked_range(start, end, MAX_PLAN_RANGE)
    return next(_forecast_candidates(zone, start, end))


# --- best window ---------------------------------------------------------------------


def _slot_values(points: tuple[IntensityPoint, ...], start: datetime, slot: timedelta, n_slots: int) -> np.ndarray:
    epoch = start.timestamp()
    return windows.resample_to_slots(
        starts_s=np.array([p.start.timestamp() - epoch for p in points]),
        ends_s=np.array([p.end.timestamp() - epoch for p in points]),
        values=np.array([float(p.g_per_kwh) for p in points]),
        grid_start_s=0.0, slot_s=slot.total_seconds(), n_slots=n_slots,
    )


def _runs(slots: np.ndarray, start: datetime, slot: timedelta,
          duration: timedelta) -> tuple[tuple[datetime, datetime], ...]:
    """Merge sorted slot indices into periods; trim the last so the total is `duration`."""
    runs: list[list[datetime]] = []
    for index in slots.tolist():
        run_start = start + index * slot
        if runs and runs[-1][1] == run_start:
            runs[-1][1] = run_start + slot
        else:
            runs.append([run_start, run_start + slot])
    excess = len(slots) * slot - duration
    runs[-1][1] -= excess
    return tuple((a, b) for a, b in runs)


def _describe(forecast: Forecast) -> str:
    what = {
        METHOD_HISTORY: "stored history", METHOD_LIVE: f"{forecast.provider} live forecast",
        METHOD_SEASONAL_NAIVE: "seasonal-naive forecast from stored history",
    }.get(forecast.method, forecast.provider)
    filled = f", gaps filled by {' and '.join(forecast.filled_by)}" if forecast.filled_by else ""
    return f"{what} ({forecast.kind}{filled})"


def _average_plan(*, zone, start, end, duration, interruptible, slot, forecast: Forecast,
                  rejected: list[str]) -> WindowPlan:
    average = annual_average_lookup(zone=zone)
    why = "; ".join(list(forecast.notes) + rejected)
    explanation = (
        f"Only the annual average is known for {zone}: {average.g_per_kwh} gCO2e/kWh "
        f"({average.description}). It is the same for every hour, so shifting saves nothing "
        f"measurable; run now."
        + (f" No hourly data because: {why}." if why else "")
    )
    return WindowPlan(
        zone=zone, start=start, end=end, duration=duration, interruptible=interruptible,
        window_start=start, window_end=start + duration, runs=((start, start + duration),),
        mean_g_per_kwh=average.g_per_kwh, run_now_g_per_kwh=average.g_per_kwh,
        provider=forecast.provider, forecast_method=METHOD_ANNUAL_AVERAGE, kind=average.kind,
        is_measurable=False, explanation=explanation, slot=slot,
    )


def best_window(*, zone: str, start: datetime, end: datetime, duration: timedelta,
                interruptible: bool = False) -> WindowPlan:
    """The lowest-carbon time to run a job of `duration` that may start at `start` and
    must finish by `end`.

    Contiguous by default: the window with the lowest mean intensity. Interruptible:
    the lowest-intensity slots (CARBON_PLAN_SLOT_MINUTES each, rounded up to cover
    `duration`). Forecasts are tried in chain order; one is used only if it covers the
    run-now window and at least one candidate window, so savings are measured against
    run-now on the same forecast. With only the annual average the plan is "run now",
    `is_measurable` is False and the explanation says why.

    Raises PlanningError if the job does not fit in [start, end), ValueError for naive
    datetimes, InvalidZoneError for a malformed zone.
    """
    zone_validate(zone)
    start, end = _checked_range(start, end, MAX_PLAN_RANGE)
    if not isinstance(duration, timedelta) or duration <= timedelta(0):
        raise PlanningError(f"duration must be a positive timedelta, got {duration!r}")
    if duration > end - start:
        raise PlanningError(f"the job needs {duration} but only {end - start} lies between start and end; "
                            "move the deadline later")
    slot = timedelta(minutes=conf.plan_slot_minutes())
    needed = math.ceil(duration / slot)
    if interruptible:
        n_slots = (end - start) // slot
        if needed > n_slots:
            raise PlanningError(f"an interruptible job of {duration} needs {needed} slots of {slot}, "
                                f"but only {n_slots} whole slots lie between start and end")
    else:
        latest_start = (end - start - duration) // slot
        n_slots = latest_start + needed

    rejected: list[str] = []
    for forecast in _forecast_candidates(zone, start, end):
        if forecast.is_annual_average:
            return _average_plan(zone=zone, start=start, end=end, duration=duration, interruptible=interruptible,
                                 slot=slot, forecast=forecast, rejected=rejected)
        values = _slot_values(forecast.points, start, slot, n_slots)
        if np.isnan(values[:needed]).any():
            rejected.append(f"{forecast.provider} does not cover the run-now window")
            continue
        try:
            if interruptible:
                chosen = windows.best_slots(values, count=needed).slots
            else:
                found = windows.best_contiguous_window(values, duration_slots=needed)
                chosen = np.arange(found.start_slot, found.start_slot + needed)
        except windows.NoFeasibleWindow as exc:
            rejected.append(f"{forecast.provider}: {exc}")
            continue
        return _measured_plan(zone=zone, start=start, end=end, duration=duration, interruptible=interruptible,
                              slot=slot, forecast=forecast, values=values, chosen=chosen, needed=needed)
    raise AssertionError("the annual average always ends the candidates")  # pragma: no cover


def _measured_plan(*, zone, start, end, duration, interruptible, slot, forecast: Forecast,
                   values: np.ndarray, chosen: np.ndarray, needed: int) -> WindowPlan:
    runs = _runs(chosen, start, slot, duration)
    mean = quantize_g_per_kwh(float(np.mean(values[chosen])))
    run_now = quantize_g_per_kwh(float(np.mean(values[:needed])))
    source = _describe(forecast)
    covered = int((~np.isnan(values)).sum())
    coverage = ""
    if covered < len(values):
        coverage = (f" The forecast covers {covered * slot / HOUR:.1f} h of the {len(values) * slot / HOUR:.1f} h "
                    "searched; hours without data were not considered.")
    if runs[0][0] == start and mean >= run_now:
        explanation = (f"Run now: {run_now} gCO2e/kWh is already the lowest-carbon option before "
                       f"{_fmt(end)}, by the {source}.{coverage}")
    else:
        percent = (run_now - mean) / run_now * 100 if run_now else 0
        when = (f"{_fmt(runs[0][0])} to {_fmt(runs[0][1])}" if len(runs) == 1
                else f"{len(runs)} periods between {_fmt(runs[0][0])} and {_fmt(runs[-1][1])}")
        explanation = (f"Run {when}: mean {mean} gCO2e/kWh instead of {run_now} if run now "
                       f"({percent:.1f}% lower), by the {source}.{coverage}")
    return WindowPlan(
        zone=zone, start=start, end=end, duration=duration, interruptible=interruptible,
        window_start=runs[0][0], window_end=runs[-1][1], runs=runs,
        mean_g_per_kwh=mean, run_now_g_per_kwh=run_now, provider=forecast.provider,
        forecast_method=forecast.method, kind=forecast.kind, is_measurable=True,
        explanation=explanation, slot=slot,
    )
