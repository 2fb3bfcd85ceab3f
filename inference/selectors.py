"""Reads of the usage ledger and registry. billing and reports read usage only here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Sum

from inference.models import UsageHour
from tenants.models import Tenant

USAGE_SUMS = ("predictions", "requests", "cpu_us", "inference_cpu_us", "energy_uj", "co2e_ug", "embodied_co2e_ug")


@dataclass(frozen=True)
class UsageBucket:
    """Usage summed over a group; all integers in their stored units."""

    predictions: int
    requests: int
    cpu_us: int
    inference_cpu_us: int
    energy_uj: int
    co2e_ug: int
    embodied_co2e_ug: int


def _sums(qs) -> dict:
    totals = qs.aggregate(**{name: Sum(name) for name in USAGE_SUMS})
    return {name: totals[name] or 0 for name in USAGE_SUMS}


def usage_hours(*, tenant: Tenant, start: datetime, end: datetime):
    """The tenant's ledger rows in the half-open [start, end), oldest first."""
    return UsageHour.objects.filter(tenant=tenant, hour__gte=start, hour__lt=end).order_by("hour", "id")


def usage_total(*, tenant: Tenant, start: datetime, end: datetime) -> UsageBucket:
    return UsageBucket(**_sums(usage_hours(tenant=tenant, start=start, end=end)))


def usage_by_hour_mode_source(*, tenant: Tenant, start: datetime, end: datetime) -> list[dict]:
    """[{hour, mode, source, predictions, ..., co2e_ug}] per hour, mode and source in [start, end).

    What rating needs: a price or tier change inside a period splits the lines at the hour.
    """
    rows = (
        usage_hours(tenant=tenant, start=start, end=end)
        .values("hour", "mode", "source")
        .annotate(**{name: Sum(name) for name in USAGE_SUMS})
        .order_by("hour", "mode", "source")
    )
    return list(rows)


def usage_by_variant(*, tenant: Tenant, start: datetime, end: datetime) -> list[dict]:
    """[{variant_id, variant__name, family, mode, source, sums...}] over [start, end)."""
    rows = (
        usage_hours(tenant=tenant, start=start, end=end)
        .values("variant_id", "variant__name", "variant__version__family__name", "mode", "source")
        .annotate(**{name: Sum(name) for name in USAGE_SUMS})
        .order_by("variant__version__family__name", "variant__name", "mode", "source")
    )
    return [
        {**row, "family": row.pop("variant__version__family__name"), "variant": row.pop("variant__name")}
        for row in rows
    ]
