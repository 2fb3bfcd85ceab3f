"""Client for the UK Carbon Intensity API (National Energy System Operator; no key).

Documented at https://carbon-intensity.github.io/api-definitions/. Two endpoints:

- national: GET /intensity/{from}/fw48h
  {"data": [{"from": "2018-01-20T12:00Z", "to": "2018-01-20T12:30Z",
             "intensity": {"forecast": 266, "actual": 263, "index": "moderate"}}, ...]}
- regional: GET /regional/intensity/{from}/fw48h/regionid/{regionid}
  {"data": {"regionid": 13, "dnoregion": "UKPN London", "shortname": "London",
            "data": [{"from": ..., "to": ..., "intensity": {"forecast": 180, "index": "moderate"},
                      "generationmix": [...]}]}}
  (a one-element list in place of the object is accepted too).

Values are gCO2/kWh of CO2 from generation only (nuclear, wind and solar count as 0),
so they are `direct`. Half-hour periods in UTC. The data is published under CC BY 4.0
("Carbon Intensity API, National Energy System Operator").
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from carbon import conf
from carbon.exceptions import ProviderError
from carbon.http import get_json
from carbon.types import DIRECT, IntensityPoint, quantize_g_per_kwh

PROVIDER = "uk-carbon-intensity"
PERIOD = timedelta(minutes=30)
HORIZON = timedelta(hours=48)


def _floor_half_hour(at: datetime) -> datetime:
    at = at.astimezone(timezone.utc)
    return at.replace(minute=at.minute - at.minute % 30, second=0, microsecond=0)


def _parse_time(value, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ProviderError(PROVIDER, f"unexpected response format: {what} {value!r} is not an ISO time") from None
    if parsed.tzinfo is None:
        raise ProviderError(PROVIDER, f"unexpected response format: {what} {value!r} has no time zone")
    return parsed.astimezone(timezone.utc)


def _number(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProviderError(PROVIDER, f"unexpected response format: intensity {value!r} is not a number")
    if value < 0:
        raise ProviderError(PROVIDER, f"unexpected response format: negative intensity {value!r}")
    return quantize_g_per_kwh(value)


def _periods(body) -> list:
    if not isinstance(body, dict) or "data" not in body:
        raise ProviderError(PROVIDER, "unexpected response format: no top-level 'data'")
    data = body["data"]
    if isinstance(data, list) and data and isinstance(data[0], dict) and "regionid" in data[0]:
        data = data[0]  # the regional answer wrapped in a one-element list
    if isinstance(data, dict):  # regional: the periods are one level down
        data = data.get("data")
    if not isinstance(data, list):
        raise ProviderError(PROVIDER, "unexpected response format: 'data' holds no list of periods")
    return data


def points_from_response(body, *, source: str) -> list[IntensityPoint]:
    """Parse a fw48h response (national or regional). The measured value (`actual`) wins
    over the forecast when both are present. Raises ProviderError on a malformed body."""
    points = []
    for period in _periods(body):
        if not isinstance(period, dict) or not isinstance(period.get("intensity"), dict):
            raise ProviderError(PROVIDER, f"unexpected response format: period {str(period)[:80]!r}")
        start = _parse_time(period.get("from"), "from")
        end = _parse_time(period.get("to"), "to")
        if end <= start:
            raise ProviderError(PROVIDER, f"unexpected response format: period {start} ends before it starts")
        actual = _number(period["intensity"].get("actual"))
        forecast = _number(period["intensity"].get("forecast"))
        if actual is None and forecast is None:
            continue  # the API leaves both empty for periods it has not estimated yet
        points.append(IntensityPoint(
            start=start, end=end, g_per_kwh=actual if actual is not None else forecast, kind=DIRECT,
            source=source, is_forecast=actual is None,
        ))
    points.sort(key=lambda p: p.start)
    return points


def forecast_48h(*, start: datetime, region_id: int | None = None, back_off: bool = True) -> list[IntensityPoint]:
    """Half-hour points for the 48 h from `start` (floored to the half hour).

    National when region_id is None, else the region (1-17). Raises ProviderError;
    back_off=False keeps a failure from pausing the provider (for optional requests).
    """
    base = conf.uk_carbon_intensity_api_base()
    frm = _floor_half_hour(start).strftime("%Y-%m-%dT%H:%MZ")
    if region_id is None:
        url, source = f"{base}/intensity/{frm}/fw48h", PROVIDER
    else:
        url = f"{base}/regional/intensity/{frm}/fw48h/regionid/{int(region_id)}"
        source = f"{PROVIDER}:region-{region_id}"
    body = get_json(provider=PROVIDER, url=url, back_off=back_off)
    return points_from_response(body, source=source)
