"""The carbon app's settings, with defaults. Read at call time so tests can override them.

Every value can be set in config/settings.py (usually from the environment):

CARBON_PROVIDERS              zone -> provider chain, "*" for the default (see DEFAULT_PROVIDERS)
CARBON_PREFERRED_KIND         "lifecycle" (default) or "direct": which stored series wins a tie
CARBON_PLAN_SLOT_MINUTES      slot length of the best-window search (default 30)
CARBON_SEASONAL_LOOKBACK_DAYS how far back the seasonal-naive forecast looks (default 28)
CARBON_INTENSITY_CACHE_SECONDS in-process cache of intensity_at per zone and hour (default 300)
CARBON_LIVE_CACHE_SECONDS     Django-cache lifetime of live API responses (default 900)
CARBON_PROVIDER_BACKOFF_SECONDS after a live provider fails, skip it this long (default 60)
CARBON_HTTP_TIMEOUT_SECONDS   connect and read timeout per HTTP attempt (default 5)
CARBON_HTTP_RETRIES           retries after a timeout, connection error, 429 or 5xx (default 2)
CARBON_HTTP_BACKOFF_SECONDS   first retry delay, doubled per retry (default 0.5)
CARBON_CACHE_KEY_PREFIX       Django-cache key prefix (default "carbon")
CARBON_UK_REGION_ZONES        zone -> UK Carbon Intensity region id; None = national
UK_CARBON_INTENSITY_API_BASE  default https://api.carbonintensity.org.uk
ELECTRICITYMAPS_API_BASE      default https://api.electricitymaps.com
ELECTRICITYMAPS_TOKEN         Electricity Maps API token; empty = provider skipped
"""

from __future__ import annotations

from django.conf import settings

HISTORY = "history"
UK_CARBON_INTENSITY = "uk-carbon-intensity"
ELECTRICITYMAPS = "electricitymaps"
SEASONAL_NAIVE = "seasonal-naive"
ANNUAL_AVERAGE = "annual-average"
PROVIDER_NAMES = (HISTORY, UK_CARBON_INTENSITY, ELECTRICITYMAPS, SEASONAL_NAIVE, ANNUAL_AVERAGE)

DEFAULT_PROVIDERS = {
    "GB": [HISTORY, UK_CARBON_INTENSITY, SEASONAL_NAIVE, ANNUAL_AVERAGE],
    "*": [HISTORY, ELECTRICITYMAPS, SEASONAL_NAIVE, ANNUAL_AVERAGE],
}

# UK Carbon Intensity API region ids (1-17). "GB" is the national forecast; regional
# zones are named GB-R<id> here because Electricity Maps has no zone per GB region.
UK_REGION_NAMES = {
    1: "North Scotland", 2: "South Scotland", 3: "North West England", 4: "North East England",
    5: "Yorkshire", 6: "North Wales and Merseyside", 7: "South Wales", 8: "West Midlands",
    9: "East Midlands", 10: "East England", 11: "South West England", 12: "South England",
    13: "London", 14: "South East England", 15: "England", 16: "Scotland", 17: "Wales",
}
DEFAULT_UK_REGION_ZONES: dict[str, int | None] = {"GB": None, **{f"GB-R{i}": i for i in UK_REGION_NAMES}}


def _get(name: str, default):
    return getattr(settings, name, default)


def providers_setting() -> dict[str, list[str]]:
    return _get("CARBON_PROVIDERS", DEFAULT_PROVIDERS)


def preferred_kind() -> str:
    return _get("CARBON_PREFERRED_KIND", "lifecycle")


def plan_slot_minutes() -> int:
    return int(_get("CARBON_PLAN_SLOT_MINUTES", 30))


def seasonal_lookback_days() -> int:
    return int(_get("CARBON_SEASONAL_LOOKBACK_DAYS", 28))


def intensity_cache_seconds() -> float:
    return float(_get("CARBON_INTENSITY_CACHE_SECONDS", 300))


def live_cache_seconds() -> int:
    return int(_get("CARBON_LIVE_CACHE_SECONDS", 900))


def provider_backoff_seconds() -> int:
    return int(_get("CARBON_PROVIDER_BACKOFF_SECONDS", 60))


def http_timeout_seconds() -> float:
    return float(_get("CARBON_HTTP_TIMEOUT_SECONDS", 5.0))


def http_retries() -> int:
    return int(_get("CARBON_HTTP_RETRIES", 2))


def http_backoff_seconds() -> float:
    return float(_get("CARBON_HTTP_BACKOFF_SECONDS", 0.5))


def cache_key_prefix() -> str:
    return _get("CARBON_CACHE_KEY_PREFIX", "carbon")


def uk_region_zones() -> dict[str, int | None]:
    return _get("CARBON_UK_REGION_ZONES", DEFAULT_UK_REGION_ZONES)


def uk_carbon_intensity_api_base() -> str:
    return _get("UK_CARBON_INTENSITY_API_BASE", "https://api.carbonintensity.org.uk").rstrip("/")


def electricitymaps_api_base() -> str:
    return _get("ELECTRICITYMAPS_API_BASE", "https://api.electricitymaps.com").rstrip("/")


def electricitymaps_token() -> str:
    return _get("ELECTRICITYMAPS_TOKEN", "") or ""
