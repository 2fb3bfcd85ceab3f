"""Annual averages from CodeCarbon's shipped data, and the zone mapping."""

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from carbon.annual_averages import _data_dir, annual_average_lookup
from carbon.exceptions import InvalidZoneError
from carbon.selectors import annual_average

Q = Decimal("0.001")


def load(name):
    return json.loads((_data_dir() / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("zone", "alpha3"), [("GB", "GBR"), ("GB-R13", "GBR"), ("DE", "DEU"), ("DE-LU", "DEU"),
                                              ("FR", "FRA")])
def test_country_zones_use_the_global_energy_mix(zone, alpha3):
    entry = load("global_energy_mix.json")[alpha3]
    average = annual_average_lookup(zone=zone)
    assert (average.g_per_kwh, average.kind, average.year) == (
        Decimal(str(entry["carbon_intensity"])).quantize(Q), "lifecycle", entry["year"])
    assert average.source == f"codecarbon-annual-average:{alpha3}:{entry['year']}"


def test_us_zones_use_egrid_state_or_national_rates():
    usa = load("2023/usa_emissions.json")
    lbs_to_g = Decimal("0.45359237")
    cal = annual_average_lookup(zone="US-CAL-CISO")
    assert (cal.g_per_kwh, cal.kind, cal.source) == (
        (Decimal(str(usa["california"]["emissions"])) * lbs_to_g).quantize(Q), "direct",
        "codecarbon-annual-average:US-california:2023")
    new_england = annual_average_lookup(zone="US-NE-ISNE")  # several states: the national rate
    assert new_england.g_per_kwh == (Decimal(str(usa["usa"]["emissions"])) * lbs_to_g).quantize(Q)


def test_nordic_bidding_zones():
    entry = load("nordic_emissions.json")["data"]["SE3"]
    average = annual_average_lookup(zone="SE-SE3")
    assert (average.g_per_kwh, average.kind) == (Decimal(str(entry["emission_factor"])).quantize(Q), "lifecycle")


def test_unknown_zone_gets_the_labelled_world_average_and_malformed_zone_fails():
    world = load("carbon_intensity_per_source.json")["world_average"]
    average = annual_average_lookup(zone="XK")  # Kosovo: no ISO 3166 entry in the data
    assert (average.g_per_kwh, average.source) == (Decimal(world).quantize(Q), "codecarbon-annual-average:world:2018")
    with pytest.raises(InvalidZoneError, match="zone 'de' is not a zone id"):
        annual_average_lookup(zone="de")


def test_annual_average_point_spans_its_year():
    point = annual_average(zone="FR")
    year = load("global_energy_mix.json")["FRA"]["year"]
    assert (point.start, point.end, point.is_average, point.is_forecast) == (
        datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year + 1, 1, 1, tzinfo=timezone.utc), True, False)
