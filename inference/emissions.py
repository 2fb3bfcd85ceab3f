"""Emissions of metered work: E x I (location-based, the tenant's zone and hour) + M.

The grid intensity comes from carbon.selectors.intensity_at (stored history, live
providers, forecasts, then the zone's annual average), cached per process per zone and
hour. The request path never waits on a network call: on a miss it takes what is known
without one (stored history, seasonal-naive, annual average) and a background thread
fetches the live value for the next requests of that hour.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from carbon import units

logger = logging.getLogger(__name__)

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
    if hit is not None:  # stale: serve it, refresh in the background
        _refresh_in_background(zone, hour)
        return hit[1], hit[2]
    with _lock:
        if key not in _cache:
            _store(key, _resolve(zone, hour, allow_live=False))
    _refresh_in_background(zone, hour)
    return _cache[key][1], _cache[key][2]


def _resolve(zone: str, hour: int, *, allow_live: bool):
    from carbon.selectors import intensity_at

    return intensity_at(zone=zone, at=datetime.fromtimestamp(hour, tz=UTC), allow_live=allow_live)


def _store(key: tuple[str, int], point) -> None:
    source = f"{point.source} ({point.kind}{', forecast' if point.is_forecast else ''}" \
             f"{', annual average' if point.is_average else ''})"
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[key] = (time.monotonic() + INTENSITY_CACHE_SECONDS, Decimal(point.g_per_kwh), source[:100])


_refreshing: set[tuple[str, int]] = set()


def _refresh_in_background(zone: str, hour: int) -> None:
    if settings.CARBON_OFFLINE:
        return  # no live provider to ask
    key = (zone, hour)
    with _lock:
        if key in _refreshing:
            return
        _refreshing.add(key)

    def run():
        from django.db import connection

        try:
            _store(key, _resolve(zone, hour, allow_live=True))
        except Exception:  # keep serving the value we have; the next miss tries again
            logger.warning("intensity refresh for %s failed", zone, exc_info=True)
        finally:
            connection.close()  # this thread's own connection
            with _lock:
                _refreshing.discard(key)

    threading.Thread(target=run, name="greentier-intensity-refresh", daemon=True).start()


@functools.lru_cache(maxsize=1)
def embodied_ug_per_cpu_second() -> Decimal:
    return Decimal(str(settings.EMBODIED_UG_PER_CPU_SECOND))


def request_emissions(*, energy_uj: int, cpu_us: int, g_per_kwh: Decimal) -> tuple[int, int]:
    """(operational co2e_ug, embodied co2e_ug) for one request."""
    return (
        units.co2e_ug(energy_uj=energy_uj, g_per_kwh=g_per_kwh),
        units.embodied_ug(cpu_us=cpu_us, ug_per_cpu_second=embodied_ug_per_cpu_second()),
    )
