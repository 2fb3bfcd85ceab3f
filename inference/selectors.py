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


@dataclass(frozen=True)
class Savings:
    """CO2e avoided in a period, each against a stated counterfactual (micrograms)."""

    green_scheduling_co2e_ug: int  # batch jobs: same energy at the run-now intensity, minus actual
    green_jobs: int
    efficiency_mode_co2e_ug: int  # efficiency requests, had the family default served them
    efficiency_mode_energy_uj: int
    efficiency_predictions: int

    def as_json(self) -> dict:
        return {
            "green_scheduling": {
                "co2e_avoided_ug": self.green_scheduling_co2e_ug, "jobs": self.green_jobs,
                "counterfactual": "each finished green-tier batch job's measured energy at the intensity of "
                                  "running it at once (from the same forecast as its plan)"},
            "efficiency_mode": {
                "co2e_avoided_ug": self.efficiency_mode_co2e_ug, "energy_avoided_uj": self.efficiency_mode_energy_uj,
                "predictions": self.efficiency_predictions,
                "counterfactual": "the same predictions served by the family's default variant: the difference of "
                                  "the two variants' profiled inference energy per prediction, at the hour's "
                                  "grid intensity"},
        }


def savings_for_period(*, tenant: Tenant, start: datetime, end: datetime) -> Savings:
    """CO2e avoided in [start, end). Reads value tuples, not model instances: a year of
    hourly efficiency rows is ~30x faster this way (instantiating 9,000 rows with four
    joined models took ~3 s)."""
    from django.db.models import Count

    from carbon import units
    from inference.models import BatchJob, Mode

    jobs = BatchJob.objects.filter(tenant=tenant, status=BatchJob.Status.SUCCEEDED, finished_at__gte=start,
                                   finished_at__lt=end, tier="green")
    green = jobs.aggregate(run_now=Sum("run_now_co2e_ug"), actual=Sum("co2e_ug"), jobs=Count("id"))
    energy_avoided = co2e_avoided = predictions = 0
    rows = (usage_hours(tenant=tenant, start=start, end=end).filter(mode=Mode.EFFICIENCY).order_by()
            .values_list("variant_id", "predictions", "intensity_g_per_kwh", "variant__energy_per_1k_uj",
                         "variant__version__family__default_variant_id",
                         "variant__version__family__default_variant__energy_per_1k_uj"))
    for variant_id, count, g_per_kwh, energy_per_1k_uj, default_id, default_per_1k_uj in rows:
        if default_id is None or default_id == variant_id:
            continue
        delta_uj = (default_per_1k_uj - energy_per_1k_uj) * count // 1000
        energy_avoided += delta_uj
        co2e_avoided += units.co2e_ug(energy_uj=delta_uj, g_per_kwh=g_per_kwh)
        predictions += count
    return Savings(
        green_scheduling_co2e_ug=(green["run_now"] or 0) - (green["actual"] or 0), green_jobs=green["jobs"],
        efficiency_mode_co2e_ug=co2e_avoided, efficiency_mode_energy_uj=energy_avoided,
        efficiency_predictions=predictions,
    )
