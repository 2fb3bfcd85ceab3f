"""Emissions of metered work: E x I (location-based, the tenant's zone and hour) + M.

The grid intensity comes from carbon.selectors.intensity_at (stored history, live
providers, forecasts, then the zone's annual average), cached per process per zone and
hour so the request path does no look-up after the first request of an hour.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from carbon import units

INTENSITY_CACHE_SECONDS = 300.0

_cache: dict[tuple[str, int], tuple[float, Decimal, str]] = {}
_lock = threading.Lock()


def intensity_for_hour(*, zone: str, hour: int) -> tuple[Decimal, str]:
    """(gCO2e/kWh, source) for a zone and an hour given as epoch seconds."""
    key = (zone, hour)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    from carbon.selectors import intensity_at

    with _lock:
        point = intensity_at(zone=zone, at=datetime.fromtimestamp(hour, tz=UTC))
        source = f"{point.source} ({point.kind}{', forecast' if point.is_forecast else ''}" \
                 f"{', annual average' if point.is_average else ''})"
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now + INTENSITY_CACHE_SECONDS, Decimal(point.g_per_kwh), source[:100])
    return _cache[key][1], _cache[key][2]


def embodied_ug_per_cpu_second() -> Decimal:
    return Decimal(str(settings.EMBODIED_UG_PER_CPU_SECOND))


def request_emissions(*, energy_uj: int, cpu_us: int, g_per_kwh: Decimal) -> tuple[int, int]:
    """(operational co2e_ug, embodied co2e_ug) for one request."""
    return (
        units.co2e_ug(energy_uj=energy_uj, g_per_kwh=g_per_kwh),
        units.embodied_ug(cpu_us=cpu_us, ug_per_cpu_second=embodied_ug_per_cpu_second()),
    )
