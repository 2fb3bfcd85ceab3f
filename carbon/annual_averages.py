"""Annual-average grid intensity per zone from the data files CodeCarbon ships.

The only module that reads CodeCarbon's data. It reads the JSON files in the installed
package (codecarbon/data/private_infra/) without importing codecarbon itself, which
would pull in its tracker and a dozen dependencies.

Zone mapping (documented in docs/carbon.md):

- SE-SE1..SE-SE4, NO-NO1..NO-NO5 (Nordic bidding zones): nordic_emissions.json,
  production-mix factors from CodeCarbon's life-cycle table -> lifecycle.
- US-<REGION>-<BA> (Electricity Maps' US zones): the state in usa_emissions.json
  (EPA eGRID, CO2e output emission rate of the plants -> direct) when the EIA region is
  one state (CAL, FLA, NY, TEN, TEX); otherwise the US national rate.
- Any other zone: its first part as an ISO 3166 alpha-2 code (GB, DE, FR, DE-LU -> DE)
  -> global_energy_mix.json (Ember / Our World in Data, life-cycle factors).
- A zone whose country is not in the data: CodeCarbon's world average (IEA, 475 g/kWh,
  CO2 from generation -> direct), the same fallback CodeCarbon itself uses.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from carbon.types import DIRECT, LIFECYCLE, quantize_g_per_kwh
from carbon.zones import zone_validate

SOURCE_PREFIX = "codecarbon-annual-average"
LBS_PER_MWH_TO_G_PER_KWH = Decimal("0.45359237")  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh

# EIA regions in Electricity Maps' US zone ids that lie (almost) within one state.
US_REGION_STATES = {"CAL": "california", "FLA": "florida", "NY": "new york", "TEN": "tennessee", "TEX": "texas"}
# The IEA report CodeCarbon cites (Global Energy & CO2 Status Report 2019) gives 2018's figure.
WORLD_AVERAGE_YEAR = 2018
NORDIC_ZONES = {f"SE-SE{i}": f"SE{i}" for i in range(1, 5)} | {f"NO-NO{i}": f"NO{i}" for i in range(1, 6)}


@dataclass(frozen=True)
class AnnualAverage:
    zone: str
    g_per_kwh: Decimal
    kind: str
    year: int  # the year the average describes
    source: str  # e.g. "codecarbon-annual-average:GBR:2023"
    description: str  # where the number comes from, for explanations


@lru_cache(maxsize=1)
def _data_dir() -> Path:
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the codecarbon package is not installed; it ships the annual-average data")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "private_infra"


@lru_cache(maxsize=8)
def _load(relative: str) -> dict:
    with open(_data_dir() / relative, encoding="utf-8") as f:
        return json.load(f)


def _alpha3(alpha2: str) -> str | None:
    import pycountry  # a CodeCarbon dependency; looked up only for country zones

    country = pycountry.countries.get(alpha_2=alpha2)
    return country.alpha_3 if country else None


def annual_average_lookup(*, zone: str) -> AnnualAverage:
    """The annual average for a zone (see the module docstring for the mapping).

    Raises InvalidZoneError for a malformed zone id; never raises for an unknown but
    well-formed zone (it gets the world average, labelled as such).
    """
    zone_validate(zone)
    return _lookup_cached(zone)


@lru_cache(maxsize=512)
def _lookup_cached(zone: str) -> AnnualAverage:
    parts = zone.split("-")
    if zone in NORDIC_ZONES:
        key = NORDIC_ZONES[zone]
        entry = _load("nordic_emissions.json")["data"][key]
        return AnnualAverage(
            zone=zone, g_per_kwh=quantize_g_per_kwh(entry["emission_factor"]), kind=LIFECYCLE,
            year=entry.get("year"), source=f"{SOURCE_PREFIX}:{key}:{entry.get('year')}",
            description=f"CodeCarbon's Nordic bidding-zone factor for {key} ({entry.get('year')})",
        )
    if parts[0] == "US":
        usa = _load("2023/usa_emissions.json")
        state = US_REGION_STATES.get(parts[1]) if len(parts) > 1 else None
        key = state if state in usa else "usa"
        year = usa.get("_source", {}).get("year")
        value = Decimal(str(usa[key]["emissions"])) * LBS_PER_MWH_TO_G_PER_KWH
        label = f"the state of {key.title()}" if key != "usa" else "the United States"
        return AnnualAverage(
            zone=zone, g_per_kwh=quantize_g_per_kwh(value), kind=DIRECT, year=year,
            source=f"{SOURCE_PREFIX}:{'US' if key == 'usa' else 'US-' + key.replace(' ', '-')}:{year}",
            description=f"EPA eGRID {year} annual CO2e output emission rate for {label}, shipped with CodeCarbon",
        )
    mix = _load("global_energy_mix.json")
    alpha3 = _alpha3(parts[0])
    entry = mix.get(alpha3) if alpha3 else None
    if entry and entry.get("carbon_intensity") is not None:
        return AnnualAverage(
            zone=zone, g_per_kwh=quantize_g_per_kwh(entry["carbon_intensity"]), kind=LIFECYCLE,
            year=entry.get("year"), source=f"{SOURCE_PREFIX}:{alpha3}:{entry.get('year')}",
            description=(f"annual average for {entry.get('country_name', alpha3)} ({entry.get('year')}, "
                         "Ember / Our World in Data via CodeCarbon)"),
        )
    world = _load("carbon_intensity_per_source.json")
    return AnnualAverage(
        zone=zone, g_per_kwh=quantize_g_per_kwh(world["world_average"]), kind=DIRECT, year=WORLD_AVERAGE_YEAR,
        source=f"{SOURCE_PREFIX}:world:{WORLD_AVERAGE_YEAR}",
        description=(f"no annual figure for {zone}; CodeCarbon's world average "
                     "(IEA Global Energy & CO2 Status Report 2019)"),
    )
