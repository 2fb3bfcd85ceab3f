"""The live clients against a loopback server speaking each API's documented format."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from carbon import electricitymaps, uk_carbon_intensity
from carbon.exceptions import ProviderError
from tests.carbon.conftest import Reply

UTC = timezone.utc
FROM = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
NATIONAL_PATH = "/intensity/2024-06-01T10:00Z/fw48h"
REGIONAL_PATH = "/regional/intensity/2024-06-01T10:00Z/fw48h/regionid/13"


def uk_period(start, forecast, actual=None, regional=False):
    intensity = {"forecast": forecast, "index": "moderate"}
    if not regional:
        intensity["actual"] = actual
    return {"from": f"{start:%Y-%m-%dT%H:%MZ}", "to": f"{start + timedelta(minutes=30):%Y-%m-%dT%H:%MZ}",
            "intensity": intensity}


def national_body(values):
    """values: (forecast, actual) per half hour from FROM."""
    return {"data": [uk_period(FROM + i * timedelta(minutes=30), f, a) for i, (f, a) in enumerate(values)]}


# --- UK Carbon Intensity ---------------------------------------------------------------


def test_uk_national_forecast_prefers_actual_over_forecast(uk_api):
    uk_api.json(NATIONAL_PATH, national_body([(200, 190), (210, None), (None, None), (150, None)]))
    points = uk_carbon_intensity.forecast_48h(start=FROM + timedelta(minutes=7))  # floored to 10:00
    assert [(p.start, p.end, p.g_per_kwh, p.is_forecast) for p in points] == [
        (FROM, FROM + timedelta(minutes=30), Decimal("190.000"), False),
        (FROM + timedelta(minutes=30), FROM + timedelta(hours=1), Decimal("210.000"), True),
        (FROM + timedelta(minutes=90), FROM + timedelta(hours=2), Decimal("150.000"), True),
    ]
    assert {p.kind for p in points} == {"direct"}
    assert {p.source for p in points} == {"uk-carbon-intensity"}


def test_uk_regional_forecast_reads_the_nested_documented_shape(uk_api):
    body = {"data": {"regionid": 13, "dnoregion": "UKPN London", "shortname": "London",
                     "data": [dict(uk_period(FROM, 180, regional=True),
                                   generationmix=[{"fuel": "gas", "perc": 40.1}]),
                              uk_period(FROM + timedelta(minutes=30), 175, regional=True)]}}
    uk_api.json(REGIONAL_PATH, body)
    points = uk_carbon_intensity.forecast_48h(start=FROM, region_id=13)
    assert [(p.start, p.g_per_kwh, p.is_forecast, p.source) for p in points] == [
        (FROM, Decimal("180.000"), True, "uk-carbon-intensity:region-13"),
        (FROM + timedelta(minutes=30), Decimal("175.000"), True, "uk-carbon-intensity:region-13"),
    ]


def test_uk_responses_are_cached(uk_api):
    uk_api.json(NATIONAL_PATH, national_body([(200, None)]))
    first = uk_carbon_intensity.forecast_48h(start=FROM)
    second = uk_carbon_intensity.forecast_48h(start=FROM + timedelta(minutes=20))  # same half hour
    assert first == second
    assert uk_api.hits(NATIONAL_PATH) == 1


def test_uk_timeout_is_retried_then_reported(uk_api):
    uk_api.reply(NATIONAL_PATH, Reply(body=national_body([(200, None)]), delay_s=1.0))
    with pytest.raises(ProviderError, match=r"uk-carbon-intensity: no response within 0.3 s .*\(after 2 attempts\)"):
        uk_carbon_intensity.forecast_48h(start=FROM)
    assert uk_api.hits(NATIONAL_PATH) == 2  # one try plus CARBON_HTTP_RETRIES=1


def test_uk_5xx_is_retried_and_a_later_success_is_used(uk_api):
    uk_api.reply(NATIONAL_PATH, Reply(status=503, body={"error": "busy"}), Reply(body=national_body([(120, None)])))
    points = uk_carbon_intensity.forecast_48h(start=FROM)
    assert [p.g_per_kwh for p in points] == [Decimal("120.000")]
    assert uk_api.hits(NATIONAL_PATH) == 2


def test_uk_persistent_5xx_fails_and_the_provider_backs_off(uk_api):
    uk_api.reply(NATIONAL_PATH, Reply(status=500, body={"error": "down"}))
    with pytest.raises(ProviderError, match=r"HTTP 500 from .* \(after 2 attempts\)"):
        uk_carbon_intensity.forecast_48h(start=FROM)
    # Within CARBON_PROVIDER_BACKOFF_SECONDS the provider is not called again.
    with pytest.raises(ProviderError, match="skipped for a while after a failure: HTTP 500"):
        uk_carbon_intensity.forecast_48h(start=FROM)
    assert uk_api.hits(NATIONAL_PATH) == 2


@pytest.mark.parametrize(("raw", "message"), [
    (b"<html>Service temporarily unavailable</html>", "is not JSON"),
    (b'{"data": "maintenance"}', "'data' holds no list of periods"),
    (b'{"data": [{"from": "yesterday", "to": "2024-06-01T10:30Z", "intensity": {"forecast": 1}}]}',
     "from 'yesterday' is not an ISO time"),
    (b'{"data": [{"from": "2024-06-01T10:00Z", "to": "2024-06-01T10:30Z", "intensity": {"forecast": "high"}}]}',
     "intensity 'high' is not a number"),
])
def test_uk_garbage_bodies_become_provider_errors(uk_api, raw, message):
    uk_api.reply(NATIONAL_PATH, Reply(raw=raw))
    with pytest.raises(ProviderError, match=message):
        uk_carbon_intensity.forecast_48h(start=FROM)
    assert uk_api.hits(NATIONAL_PATH) == 1  # a bad body is not retried


def test_uk_4xx_is_not_retried(uk_api):
    uk_api.reply(NATIONAL_PATH, Reply(status=400, body={"error": {"code": "400 Bad Request"}}))
    with pytest.raises(ProviderError, match="HTTP 400"):
        uk_carbon_intensity.forecast_48h(start=FROM)
    assert uk_api.hits(NATIONAL_PATH) == 1


# --- Electricity Maps ------------------------------------------------------------------


def em_item(start, value, **extra):
    return {"zone": "DE", "carbonIntensity": value, "datetime": f"{start:%Y-%m-%dT%H:%M:%S}.000Z",
            "updatedAt": "2024-06-01T09:55:12.000Z", "createdAt": "2024-05-29T10:00:00.000Z",
            "emissionFactorType": "lifecycle", "isEstimated": False, "estimationMethod": None, **extra}


def test_em_latest_history_and_forecast_in_documented_format(em_api):
    em_api.json("/v3/carbon-intensity/latest", em_item(FROM, 302))
    em_api.json("/v3/carbon-intensity/history", {"zone": "DE", "history": [
        em_item(FROM - timedelta(hours=2), 310), em_item(FROM - timedelta(hours=1), None), em_item(FROM, 302),
    ]})
    em_api.json("/v3/carbon-intensity/forecast", {"zone": "DE", "updatedAt": "2024-06-01T09:00:00.000Z", "forecast": [
        {"carbonIntensity": 290, "datetime": "2024-06-01T11:00:00.000Z"},
        {"carbonIntensity": 275.5, "datetime": "2024-06-01T12:00:00.000Z"},
    ]})
    latest = electricitymaps.latest(zone="DE", kind="lifecycle")
    assert (latest.start, latest.end, latest.g_per_kwh, latest.kind, latest.is_forecast) == (
        FROM, FROM + timedelta(hours=1), Decimal("302.000"), "lifecycle", False)
    history = electricitymaps.history_24h(zone="DE", kind="lifecycle")
    assert [(p.start, p.g_per_kwh) for p in history] == [
        (FROM - timedelta(hours=2), Decimal("310.000")), (FROM, Decimal("302.000"))]  # the null hour is left out
    forecast = electricitymaps.forecast(zone="DE", kind="lifecycle")
    assert [(p.start, p.end, p.g_per_kwh, p.is_forecast) for p in forecast] == [
        (FROM + timedelta(hours=1), FROM + timedelta(hours=2), Decimal("290.000"), True),
        (FROM + timedelta(hours=2), FROM + timedelta(hours=3), Decimal("275.500"), True),
    ]
    seen = em_api.requests[0]
    assert seen.headers["auth-token"] == "test-token-123"
    assert seen.query == {"zone": ["DE"], "emissionFactorType": ["lifecycle"]}


def test_em_granularity_sets_the_point_length(em_api):
    em_api.json("/v3/carbon-intensity/history", {"zone": "DE", "temporalGranularity": "15_minutes",
                                                 "history": [em_item(FROM, 300)]})
    [point] = electricitymaps.history_24h(zone="DE", kind="lifecycle")
    assert point.end - point.start == timedelta(minutes=15)


def test_em_without_token_fails_without_a_request(em_api, settings):
    settings.ELECTRICITYMAPS_TOKEN = ""
    with pytest.raises(ProviderError, match="ELECTRICITYMAPS_TOKEN is not set"):
        electricitymaps.latest(zone="DE", kind="lifecycle")
    assert em_api.requests == []


def test_em_timeout(em_api):
    em_api.reply("/v3/carbon-intensity/forecast", Reply(body={"forecast": []}, delay_s=1.0))
    with pytest.raises(ProviderError, match=r"electricitymaps: no response within 0.3 s"):
        electricitymaps.forecast(zone="DE", kind="lifecycle")
    assert em_api.hits("/v3/carbon-intensity/forecast") == 2


def test_em_5xx(em_api):
    em_api.reply("/v3/carbon-intensity/forecast", Reply(status=502, raw=b"Bad Gateway"))
    with pytest.raises(ProviderError, match=r"HTTP 502 from .*/v3/carbon-intensity/forecast \(after 2 attempts\)"):
        electricitymaps.forecast(zone="DE", kind="lifecycle")
    assert em_api.hits("/v3/carbon-intensity/forecast") == 2


def test_em_bad_token_is_reported_not_retried(em_api):
    em_api.reply("/v3/carbon-intensity/latest", Reply(status=401, body={"message": "Invalid auth-token"}))
    with pytest.raises(ProviderError, match="HTTP 401"):
        electricitymaps.latest(zone="DE", kind="lifecycle")
    assert em_api.hits("/v3/carbon-intensity/latest") == 1


@pytest.mark.parametrize(("raw", "message"), [
    (b"not json at all", "is not JSON"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b'{"zone": "DE", "forecast": {"carbonIntensity": 1}}', "'forecast' is not a list"),
    (b'{"zone": "DE", "forecast": [{"carbonIntensity": -5, "datetime": "2024-06-01T11:00:00Z"}]}',
     "carbonIntensity -5"),
    (b'{"zone": "DE", "forecast": [{"carbonIntensity": 5, "datetime": "2024-06-01 11:00"}]}', "has no time zone"),
])
def test_em_garbage_bodies_become_provider_errors(em_api, raw, message):
    em_api.reply("/v3/carbon-intensity/forecast", Reply(raw=raw))
    with pytest.raises(ProviderError, match=message):
        electricitymaps.forecast(zone="DE", kind="lifecycle")
