"""The public selectors: provider chain, fallbacks, caching and best-window plans."""

import csv
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from carbon import selectors
from carbon.annual_averages import _data_dir
from carbon.exceptions import InvalidZoneError, PlanningError
from carbon.importers import ImportRow
from carbon.services import grid_intensity_import
from tests.carbon.conftest import Reply
from tests.conftest import SHARED

UTC = timezone.utc
HALF = timedelta(minutes=30)
HOUR = timedelta(hours=1)
Q = Decimal("0.001")
T0 = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)  # a Monday; all stored series start here
EM_DE = SHARED / "data" / "grid-intensity" / "electricitymaps-2023" / "DE-LU_2023_hourly.csv"


def store(zone, start, values, *, step=HALF, kind="lifecycle", source="test-series"):
    rows = [ImportRow(start=start + i * step, end=start + (i + 1) * step, g_per_kwh=Decimal(v).quantize(Q),
                      kind=kind, is_estimated=False, line=i + 2) for i, v in enumerate(values)]
    grid_intensity_import(zone=zone, source=source, rows=rows)


def codecarbon_country(alpha3):
    data = json.loads((_data_dir() / "global_energy_mix.json").read_text())
    return Decimal(str(data[alpha3]["carbon_intensity"])).quantize(Q)


def uk_body(start, values, *, actual=False):
    return {"data": [
        {"from": f"{start + i * HALF:%Y-%m-%dT%H:%MZ}", "to": f"{start + (i + 1) * HALF:%Y-%m-%dT%H:%MZ}",
         "intensity": {"forecast": v, "actual": v if actual else None, "index": "low"}}
        for i, v in enumerate(values)
    ]}


def uk_path(start):
    return f"/intensity/{start:%Y-%m-%dT%H:%MZ}/fw48h"


# --- intensity_at ------------------------------------------------------------------------


@pytest.mark.django_db
def test_intensity_at_reads_stored_history_then_serves_the_hour_from_memory(django_assert_num_queries):
    store("GB", T0, [100 + i for i in range(48)])
    at = T0 + timedelta(hours=10, minutes=20)  # in the 10:00-10:30 slot, value 100 + 20
    point = selectors.intensity_at(zone="GB", at=at)
    assert (point.start, point.end, point.g_per_kwh) == (T0 + 20 * HALF, T0 + 21 * HALF, Decimal("120.000"))
    assert (point.kind, point.source, point.is_forecast, point.is_average) == ("lifecycle", "test-series", False, False)
    with django_assert_num_queries(0):
        assert selectors.intensity_at(zone="GB", at=at + timedelta(minutes=5)) == point
        later = selectors.intensity_at(zone="GB", at=at + timedelta(minutes=15))  # 10:35, same hour
    assert later.g_per_kwh == Decimal("121.000")


@pytest.mark.django_db
def test_intensity_at_uses_the_live_uk_api_when_nothing_is_stored(uk_api):
    hour = datetime(2024, 6, 1, 14, tzinfo=UTC)
    uk_api.json(uk_path(hour), uk_body(hour, [180, 170, 160]))
    point = selectors.intensity_at(zone="GB", at=hour + timedelta(minutes=40))
    assert (point.start, point.g_per_kwh, point.kind, point.source, point.is_forecast) == (
        hour + HALF, Decimal("170.000"), "direct", "uk-carbon-intensity", True)


@pytest.mark.django_db
def test_regional_gb_zone_uses_the_regional_endpoint(uk_api):
    hour = datetime(2024, 6, 1, 14, tzinfo=UTC)
    body = {"data": {"regionid": 13, "shortname": "London", "data": uk_body(hour, [150, 140])["data"]}}
    uk_api.json(f"/regional/intensity/{hour:%Y-%m-%dT%H:%MZ}/fw48h/regionid/13", body)
    point = selectors.intensity_at(zone="GB-R13", at=hour)
    assert (point.g_per_kwh, point.source) == (Decimal("150.000"), "uk-carbon-intensity:region-13")


@pytest.mark.django_db
def test_intensity_at_falls_back_to_seasonal_naive_then_to_the_annual_average(uk_api):
    # The UK API is down; a week of stored history gives the value one week earlier.
    uk_api.reply(uk_path(T0 + timedelta(days=7, hours=3)), Reply(status=503, body={}))
    store("GB", T0, [200 + i % 48 for i in range(7 * 48)])
    point = selectors.intensity_at(zone="GB", at=T0 + timedelta(days=7, hours=3))
    assert (point.g_per_kwh, point.is_forecast, point.source) == (
        Decimal("206.000"), True, "seasonal-naive:test-series:-7d")
    # France has nothing stored and no Electricity Maps token: the annual average.
    average = selectors.intensity_at(zone="FR", at=T0)
    assert (average.g_per_kwh, average.is_average, average.start, average.end) == (
        codecarbon_country("FRA"), True, T0, T0 + HOUR)
    assert average.source == "codecarbon-annual-average:FRA:2023"


def test_intensity_at_rejects_bad_input():
    with pytest.raises(InvalidZoneError):
        selectors.intensity_at(zone="Germany", at=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        selectors.intensity_at(zone="DE", at=datetime(2024, 1, 1))


# --- history and forecast ----------------------------------------------------------------


@pytest.mark.django_db
def test_history_returns_measurements_only(uk_api):
    start = datetime(2024, 6, 1, 10, tzinfo=UTC)
    uk_api.json(uk_path(start), {"data": uk_body(start, [190, 185], actual=True)["data"]
                                 + uk_body(start + HOUR, [170, 160])["data"]})
    points = selectors.intensity_history(zone="GB", start=start, end=start + 2 * HOUR)
    assert [(p.start, p.g_per_kwh, p.is_forecast) for p in points] == [
        (start, Decimal("190.000"), False), (start + HALF, Decimal("185.000"), False)]
    assert selectors.intensity_history(zone="FR", start=start, end=start + HOUR) == []


@pytest.mark.django_db
def test_history_prefers_the_series_that_covers_the_range_then_the_preferred_kind(settings):
    store("DE", T0, [300] * 4, kind="direct", source="a")
    store("DE", T0, [400] * 4, kind="lifecycle", source="b")
    store("DE", T0, [500] * 2, kind="lifecycle", source="c")
    points = selectors.intensity_history(zone="DE", start=T0, end=T0 + 2 * HOUR)
    assert {(p.kind, p.source, p.g_per_kwh) for p in points} == {("lifecycle", "b", Decimal("400.000"))}
    settings.CARBON_PREFERRED_KIND = "direct"
    points = selectors.intensity_history(zone="DE", start=T0, end=T0 + 2 * HOUR)
    assert {(p.kind, p.source) for p in points} == {("direct", "a")}


@pytest.mark.django_db
def test_seasonal_naive_uses_one_week_earlier_else_one_day_earlier(uk_api):
    start = T0 + timedelta(days=7)
    uk_api.reply(uk_path(start), Reply(status=503, body={}))
    # The first 12 h of the day a week before `start`, and the last 12 h before `start`.
    store("GB", T0, [10 + i for i in range(24)], source="grid")
    store("GB", start - timedelta(hours=12), [500 + i for i in range(24)], source="grid")
    forecast = selectors.intensity_forecast(zone="GB", start=start, end=start + timedelta(hours=24))
    assert (forecast.provider, forecast.method, forecast.kind, forecast.is_seasonal_naive) == (
        "seasonal-naive", "seasonal-naive", "lifecycle", True)
    assert forecast.notes == ("history has no data for GB in this range",
                              "uk-carbon-intensity failed (HTTP 503 from "
                              f"{uk_api.base_url}{uk_path(start)} (after 2 attempts))")
    # 00:00-12:00 repeats the week-old values; 12:00-24:00 has no week-old data and
    # repeats the day before (lag one day).
    assert [(p.g_per_kwh, p.source) for p in forecast.points] == (
        [(Decimal(10 + i).quantize(Q), "seasonal-naive:grid:-7d") for i in range(24)]
        + [(Decimal(500 + i).quantize(Q), "seasonal-naive:grid:-1d") for i in range(24)])
    assert all(p.is_forecast for p in forecast.points)


@pytest.mark.django_db
def test_live_forecast_is_filled_with_the_same_kind_only(uk_api):
    start = T0 + timedelta(days=7)
    uk_api.json(uk_path(start), uk_body(start, [100, 110, 120, 130]))  # 2 h of a 4 h range
    uk_api.json(uk_path(start + 2 * HOUR), {"data": []})
    store("GB", T0, [400] * (7 * 48), kind="lifecycle", source="lca")
    forecast = selectors.intensity_forecast(zone="GB", start=start, end=start + 4 * HOUR)
    assert (forecast.provider, forecast.is_live, forecast.kind, forecast.filled_by) == (
        "uk-carbon-intensity", True, "direct", ())
    assert len(forecast.points) == 4  # life-cycle values are never mixed into a direct forecast

    store("GB", T0, [90] * (7 * 48), kind="direct", source="direct-series")
    selectors.intensity_cache_clear()
    forecast = selectors.intensity_forecast(zone="GB", start=start, end=start + 4 * HOUR)
    assert forecast.filled_by == ("seasonal-naive",)
    assert [p.g_per_kwh for p in forecast.points] == [
        Decimal(v).quantize(Q) for v in (100, 110, 120, 130, 90, 90, 90, 90)]


@pytest.mark.django_db
def test_electricitymaps_live_forecast(em_api):
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    em_api.json("/v3/carbon-intensity/latest", {"zone": "DE", "carbonIntensity": 300,
                                                "datetime": now_hour.isoformat(), "emissionFactorType": "lifecycle"})
    em_api.json("/v3/carbon-intensity/forecast", {"zone": "DE", "forecast": [
        {"carbonIntensity": 310 - 20 * i, "datetime": (now_hour + (i + 1) * HOUR).isoformat()} for i in range(6)]})
    forecast = selectors.intensity_forecast(zone="DE", start=now_hour + HOUR, end=now_hour + 5 * HOUR)
    assert (forecast.provider, forecast.is_live, forecast.kind) == ("electricitymaps", True, "lifecycle")
    assert [(p.start, p.g_per_kwh) for p in forecast.points] == [
        (now_hour + (i + 1) * HOUR, Decimal(310 - 20 * i).quantize(Q)) for i in range(4)]
    assert em_api.hits("/v3/carbon-intensity/history") == 0  # the range is in the future


@pytest.mark.django_db
def test_electricitymaps_current_intensity_and_recent_history(em_api):
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    em_api.json("/v3/carbon-intensity/latest", {"zone": "DE", "carbonIntensity": 333,
                                                "datetime": now_hour.isoformat(), "emissionFactorType": "lifecycle"})
    em_api.json("/v3/carbon-intensity/forecast", {"zone": "DE", "forecast": []})
    em_api.json("/v3/carbon-intensity/history", {"zone": "DE", "history": [
        {"carbonIntensity": 300 + h, "datetime": (now_hour - (3 - h) * HOUR).isoformat(),
         "emissionFactorType": "lifecycle", "isEstimated": h == 2} for h in range(3)]})
    current = selectors.intensity_current(zone="DE")
    assert (current.start, current.g_per_kwh, current.source, current.is_forecast) == (
        now_hour, Decimal("333.000"), "electricitymaps", False)
    assert em_api.hits("/v3/carbon-intensity/history") == 0  # the current hour needs no history
    history = selectors.intensity_history(zone="DE", start=now_hour - 3 * HOUR, end=now_hour)
    assert [(p.start, p.g_per_kwh) for p in history] == [
        (now_hour - (3 - h) * HOUR, Decimal(300 + h).quantize(Q)) for h in range(3)]


@pytest.mark.django_db
def test_provider_chain_comes_from_settings(settings, em_api):
    settings.CARBON_PROVIDERS = {"DE": ["annual-average"], "*": ["history", "electricitymaps"]}
    forecast = selectors.intensity_forecast(zone="DE", start=T0, end=T0 + HOUR)
    assert forecast.is_annual_average and em_api.requests == []
    settings.CARBON_PROVIDERS = {"*": ["history", "carbon-oracle"]}
    with pytest.raises(ImproperlyConfigured, match="unknown provider.*carbon-oracle"):
        selectors.intensity_forecast(zone="DE", start=T0, end=T0 + HOUR)


# --- best_window -------------------------------------------------------------------------


def em_lca_slots(first_line, hours):
    """Life-cycle values of the DE 2023 export as 30-minute slots (each hour twice)."""
    with open(EM_DE, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[first_line - 1:first_line - 1 + hours]
    start = datetime.fromisoformat(rows[0][0]).replace(tzinfo=UTC)
    return start, [Decimal(r[5]).quantize(Q) for r in rows for _ in range(2)]


@pytest.fixture
def de_history(db, tmp_path):
    """Three days of the DE 2023 export imported through the command."""
    lines = Path(EM_DE).read_text(encoding="utf-8").splitlines()
    path = tmp_path / "de.csv"
    path.write_text("\n".join(lines[:1] + lines[2000:2072]) + "\n", encoding="utf-8")
    call_command("import_grid_intensity", str(path), "--zone", "DE", "--no-progress", stdout=open("/dev/null", "w"))
    return em_lca_slots(2001, 72)


def test_best_window_on_a_past_range_matches_brute_force(de_history):
    first, slots = de_history
    start, end, duration = first + HALF, first + HALF + timedelta(hours=48), timedelta(hours=5)
    k = 10
    candidates = slots[1:1 + 96]  # slots from `start` to `end`
    means = [sum(candidates[s:s + k]) / k for s in range(96 - k + 1)]
    best = min(range(len(means)), key=lambda s: (means[s], s))

    plan = selectors.best_window(zone="DE", start=start, end=end, duration=duration)

    assert plan.window_start == start + best * HALF
    assert plan.window_end == plan.window_start + duration
    assert plan.runs == ((plan.window_start, plan.window_end),)
    assert plan.mean_g_per_kwh == means[best].quantize(Q)
    assert plan.run_now_g_per_kwh == means[0].quantize(Q)
    assert (plan.provider, plan.forecast_method, plan.kind, plan.is_measurable) == (
        "history", "history", "lifecycle", True)
    percent = (means[0].quantize(Q) - means[best].quantize(Q)) / means[0].quantize(Q) * 100
    assert plan.explanation == (
        f"Run {plan.window_start:%Y-%m-%d %H:%M} UTC to {plan.window_end:%Y-%m-%d %H:%M} UTC: mean "
        f"{plan.mean_g_per_kwh} gCO2e/kWh instead of {plan.run_now_g_per_kwh} if run now ({percent:.1f}% lower), "
        "by the stored history (lifecycle).")


def test_interruptible_plan_takes_the_lowest_slots(de_history):
    first, slots = de_history
    start, end, duration = first, first + timedelta(hours=24), timedelta(hours=3, minutes=10)
    k = 7  # 3 h 10 min rounds up to seven 30-minute slots
    chosen = sorted(sorted(range(48), key=lambda i: (slots[i], i))[:k])

    plan = selectors.best_window(zone="DE", start=start, end=end, duration=duration, interruptible=True)

    assert plan.mean_g_per_kwh == (sum(slots[i] for i in chosen) / k).quantize(Q)
    assert plan.run_now_g_per_kwh == (sum(slots[:k]) / k).quantize(Q)
    covered = [i for i in range(48) if any(a <= start + i * HALF < b for a, b in plan.runs)]
    assert covered == chosen
    assert sum((b - a for a, b in plan.runs), timedelta()) == duration  # the last slot is trimmed


@pytest.mark.django_db
def test_best_window_with_only_the_annual_average_saves_nothing_measurable():
    start = datetime(2030, 5, 1, 9, tzinfo=UTC)
    plan = selectors.best_window(zone="FR", start=start, end=start + timedelta(hours=20), duration=timedelta(hours=2))
    average = codecarbon_country("FRA")
    assert (plan.window_start, plan.window_end, plan.runs) == (start, start + 2 * HOUR, ((start, start + 2 * HOUR),))
    assert (plan.mean_g_per_kwh, plan.run_now_g_per_kwh, plan.saving_fraction) == (average, average, Decimal(0))
    assert (plan.is_measurable, plan.forecast_method, plan.provider) == (False, "annual-average", "annual-average")
    assert plan.explanation == (
        f"Only the annual average is known for FR: {average} gCO2e/kWh (annual average for France (2023, "
        "Ember / Our World in Data via CodeCarbon)). It is the same for every hour, so shifting saves nothing "
        "measurable; run now. No hourly data because: history has no data for FR in this range; "
        "electricitymaps skipped: ELECTRICITYMAPS_TOKEN is not set; seasonal-naive has no data for FR in this range.")


@pytest.mark.django_db
def test_best_window_uses_a_partial_live_forecast_and_says_what_it_covers(uk_api):
    start = datetime(2024, 6, 1, 10, tzinfo=UTC)
    uk_api.json(uk_path(start), uk_body(start, [200, 210, 150, 90, 95, 180, 220, 230]))  # 4 h
    uk_api.json(uk_path(start + 4 * HOUR), {"data": []})
    plan = selectors.best_window(zone="GB", start=start, end=start + 6 * HOUR, duration=HOUR)
    assert (plan.window_start, plan.mean_g_per_kwh, plan.run_now_g_per_kwh) == (
        start + 3 * HALF, Decimal("92.500"), Decimal("205.000"))
    assert (plan.provider, plan.forecast_method, plan.kind) == ("uk-carbon-intensity", "live", "direct")
    assert plan.saving_fraction == Decimal("0.5488")
    assert plan.explanation.endswith(
        "by the uk-carbon-intensity live forecast (direct). The forecast covers 4.0 h of the 6.0 h searched; "
        "hours without data were not considered.")


@pytest.mark.django_db
def test_run_now_is_reported_when_it_is_already_best(uk_api):
    start = datetime(2024, 6, 1, 10, tzinfo=UTC)
    uk_api.json(uk_path(start), uk_body(start, [50, 60, 70, 80]))
    plan = selectors.best_window(zone="GB", start=start, end=start + 2 * HOUR, duration=HOUR)
    assert (plan.window_start, plan.mean_g_per_kwh, plan.saving_fraction) == (start, Decimal("55.000"), Decimal(0))
    assert plan.explanation == ("Run now: 55.000 gCO2e/kWh is already the lowest-carbon option before "
                                "2024-06-01 12:00 UTC, by the uk-carbon-intensity live forecast (direct).")


@pytest.mark.django_db
def test_a_forecast_that_misses_the_run_now_window_is_not_used(uk_api):
    start = datetime(2024, 6, 1, 10, tzinfo=UTC)
    later = start + HOUR
    # The live data starts an hour late, so run-now cannot be measured on it: the
    # next candidate (the annual average) is used and the reason is given.
    uk_api.json(uk_path(start), uk_body(later, [10, 10, 10, 10]))
    uk_api.json(uk_path(later + 2 * HOUR), {"data": []})
    plan = selectors.best_window(zone="GB", start=start, end=start + 4 * HOUR, duration=HOUR)
    assert plan.is_measurable is False
    assert plan.explanation.endswith("No hourly data because: history has no data for GB in this range; "
                                     "seasonal-naive has no data for GB in this range; "
                                     "uk-carbon-intensity does not cover the run-now window.")


def test_best_window_rejects_impossible_requests():
    start = datetime(2024, 6, 1, 10, tzinfo=UTC)
    with pytest.raises(PlanningError, match="the job needs 3:00:00 but only 2:00:00 lies between start and end"):
        selectors.best_window(zone="GB", start=start, end=start + 2 * HOUR, duration=3 * HOUR)
    with pytest.raises(PlanningError, match="needs 3 slots of 0:30:00, but only 2 whole slots"):
        selectors.best_window(zone="GB", start=start, end=start + timedelta(minutes=75),
                              duration=timedelta(minutes=75), interruptible=True)
    with pytest.raises(PlanningError, match="positive timedelta"):
        selectors.best_window(zone="GB", start=start, end=start + HOUR, duration=timedelta(0))
    with pytest.raises(ValueError, match="must be after start"):
        selectors.best_window(zone="GB", start=start, end=start, duration=HOUR)
