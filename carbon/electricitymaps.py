"""Client for the Electricity Maps API v3 (token in the `auth-token` header).

Documented at https://portal.electricitymaps.com/docs/api. Three endpoints, each with
`?zone=<zone>&emissionFactorType=lifecycle|direct`:

- GET /v3/carbon-intensity/latest
  {"zone": "DE", "carbonIntensity": 302, "datetime": "2019-05-21T00:00:00.000Z",
   "updatedAt": ..., "emissionFactorType": "lifecycle", "isEstimated": true, ...}
- GET /v3/carbon-intensity/history   (the past 24 hours)
  {"zone": "DE", "history": [{<same fields as latest>}, ...]}
- GET /v3/carbon-intensity/forecast  (the next 24 hours or more, by plan)
  {"zone": "DE", "forecast": [{"carbonIntensity": 320, "datetime": "..."}, ...], "updatedAt": ...}

Each value covers the period starting at `datetime` of `temporalGranularity` (hourly
when absent). Data is consumption-based (flow-traced). Attribution: "Electricity Maps"
(see docs/carbon.md for the licence terms).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from carbon import conf
from carbon.exceptions import ProviderError
from carbon.http import get_json
from carbon.types import KINDS, IntensityPoint, quantize_g_per_kwh

PROVIDER = "electricitymaps"
GRANULARITY = {"5_minutes": timedelta(minutes=5), "15_minutes": timedelta(minutes=15), "hourly": timedelta(hours=1)}


def _get(endpoint: str, *, zone: str, kind: str) -> dict:
    token = conf.electricitymaps_token()
    if not token:
        raise ProviderError(PROVIDER, "ELECTRICITYMAPS_TOKEN is not set")
    body = get_json(
        provider=PROVIDER,
        url=f"{conf.electricitymaps_api_base()}/v3/carbon-intensity/{endpoint}",
        params={"zone": zone, "emissionFactorType": kind},
        headers={"auth-token": token},
    )
    if not isinstance(body, dict):
        raise ProviderError(PROVIDER, f"unexpected response format from {endpoint}: not a JSON object")
    return body


def _point(item, *, kind: str, is_forecast: bool, default_step: timedelta) -> IntensityPoint | None:
    if not isinstance(item, dict) or "datetime" not in item or "carbonIntensity" not in item:
        raise ProviderError(PROVIDER, f"unexpected response format: entry {str(item)[:80]!r}")
    value = item["carbonIntensity"]
    if value is None:
        return None  # the API sends null for hours it has no value for
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ProviderError(PROVIDER, f"unexpected response format: carbonIntensity {value!r}")
    try:
        start = datetime.fromisoformat(item["datetime"])
    except (TypeError, ValueError):
        raise ProviderError(PROVIDER, f"unexpected response format: datetime {item['datetime']!r}") from None
    if start.tzinfo is None:
        raise ProviderError(PROVIDER, f"unexpected response format: datetime {item['datetime']!r} has no time zone")
    step = GRANULARITY.get(item.get("temporalGranularity"), default_step)
    reported_kind = item.get("emissionFactorType", kind)
    return IntensityPoint(
        start=start.astimezone(timezone.utc), end=start.astimezone(timezone.utc) + step,
        g_per_kwh=quantize_g_per_kwh(value), kind=reported_kind if reported_kind in KINDS else kind,
        source=PROVIDER, is_forecast=is_forecast,
    )


def _points(items, *, kind: str, is_forecast: bool, default_step: timedelta, what: str) -> list[IntensityPoint]:
    if not isinstance(items, list):
        raise ProviderError(PROVIDER, f"unexpected response format: '{what}' is not a list")
    points = [p for p in (_point(i, kind=kind, is_forecast=is_forecast, default_step=default_step) for i in items) if p]
    points.sort(key=lambda p: p.start)
    return points


def _step(body: dict) -> timedelta:
    return GRANULARITY.get(body.get("temporalGranularity"), GRANULARITY["hourly"])


def latest(*, zone: str, kind: str) -> IntensityPoint | None:
    """The latest value for the zone, or None if the API has none. Raises ProviderError."""
    body = _get("latest", zone=zone, kind=kind)
    return _point(body, kind=kind, is_forecast=False, default_step=_step(body))


def history_24h(*, zone: str, kind: str) -> list[IntensityPoint]:
    body = _get("history", zone=zone, kind=kind)
    return _points(body.get("history"), kind=kind, is_forecast=False, default_step=_step(body), what="history")


def forecast(*, zone: str, kind: str) -> list[IntensityPoint]:
    body = _get("forecast", zone=zone, kind=kind)
    return _points(body.get("forecast"), kind=kind, is_forecast=True, default_step=_step(body), what="forecast")
