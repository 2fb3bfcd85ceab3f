"""Grid zone ids and the provider chain each zone uses."""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

from carbon import conf
from carbon.exceptions import InvalidZoneError

# Electricity Maps' naming: GB, DE, FR, US-CAL-CISO, SE-SE3, ... (the same rule as
# Tenant.grid_zone; carbon does not import tenants).
ZONE_RE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]+)*$")


def zone_validate(zone: str) -> str:
    if not isinstance(zone, str) or not ZONE_RE.match(zone):
        raise InvalidZoneError(f"zone {zone!r} is not a zone id like GB, DE or US-CAL-CISO")
    return zone


def zone_provider_chain(*, zone: str) -> list[str]:
    """The provider names for a zone: its own entry, else its parent's (GB-R13 -> GB), else "*".

    Raises ImproperlyConfigured for a chain with an unknown provider name.
    """
    zone_validate(zone)
    configured = conf.providers_setting()
    parts = zone.split("-")
    chain = None
    for n in range(len(parts), 0, -1):
        chain = configured.get("-".join(parts[:n]))
        if chain is not None:
            break
    if chain is None:
        chain = configured.get("*", conf.DEFAULT_PROVIDERS["*"])
    unknown = [name for name in chain if name not in conf.PROVIDER_NAMES]
    if unknown:
        raise ImproperlyConfigured(
            f"CARBON_PROVIDERS for {zone}: unknown provider(s) {', '.join(unknown)}; "
            f"choose from {', '.join(conf.PROVIDER_NAMES)}"
        )
    return list(chain)
