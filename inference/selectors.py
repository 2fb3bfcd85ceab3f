"""Reads of the usage ledger and registry. billing and reports read usage only here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Sum

from carbon import units
from inference.models import BatchJob, Mode, ModelVariant, Source, UsageHour
from tenants.models import Tenant, Tier

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


def usage_for_family_mode(*, tenant: Tenant, family_id: int, mode: str, start: datetime, end: datetime):
    """Online ledger rows of one model family and mode in [start, end) (what an SLA measures)."""
    return usage_hours(tenant=tenant, start=start, end=end).filter(
        variant__version__family_id=family_id, mode=mode, source=Source.ONLINE)


def batch_jobs_finished(*, tenant: Tenant, start: datetime, end: datetime, tier: str | None = None):
    """Succeeded batch jobs that finished in [start, end), oldest first; `tier` narrows to
    the jobs submitted on that tier."""
    jobs = BatchJob.objects.filter(tenant=tenant, status=BatchJob.Status.SUCCEEDED, finished_at__gte=start,
                                   finished_at__lt=end)
    if tier is not None:
        jobs = jobs.filter(tier=tier)
    return jobs.order_by("finished_at", "id")


def batch_job_list(*, tenant: Tenant):
    """The tenant's batch jobs, newest first, with what their pages show."""
    return (BatchJob.objects.filter(tenant=tenant).select_related("input", "family", "variant")
            .order_by("-submitted_at", "-id"))


def batch_jobs_planned_in(*, tenant: Tenant, start: datetime, end: datetime):
    """The tenant's batch jobs (but failed ones) whose planned window overlaps [start, end),
    by planned start."""
    return (BatchJob.objects.filter(tenant=tenant, planned_start__lt=end, planned_end__gt=start)
            .exclude(status=BatchJob.Status.FAILED).select_related("family").order_by("planned_start", "id"))


def batch_job_get(*, tenant: Tenant, job_id: int) -> BatchJob | None:
    """One of the tenant's batch jobs, or None for a missing id, an id out of range and,
    identically, another tenant's job."""
    if not 0 < job_id < 2**63:
        return None
    return batch_job_list(tenant=tenant).filter(id=job_id).first()


def green_savings(*, tenant: Tenant, start: datetime, end: datetime) -> tuple[int, int]:
    """(CO2e avoided by green scheduling in ug, jobs): the green-tier batch jobs that
    finished in [start, end), their measured energy at the run-now intensity minus as run."""
    green = batch_jobs_finished(tenant=tenant, start=start, end=end, tier=Tier.GREEN).order_by().aggregate(
        run_now=Sum("run_now_co2e_ug"), actual=Sum("co2e_ug"), jobs=Count("id"))
    return int(green["run_now"] or 0) - int(green["actual"] or 0), green["jobs"]


def _efficiency_deltas() -> dict[int, int]:
    """{variant id: default variant's energy per 1,000 minus its own, uJ} for every variant
    of a family with a default, other than the default itself (a few registry rows)."""
    rows = (ModelVariant.objects.exclude(version__family__default_variant__isnull=True)
            .values_list("id", "energy_per_1k_uj", "version__family__default_variant_id",
                         "version__family__default_variant__energy_per_1k_uj"))
    return {vid: default_e - own_e for vid, own_e, default_id, default_e in rows if vid != default_id}


# Efficiency-mode savings per ledger row, with these integer rules:
#   delta_uj = floor(delta_per_1k x predictions / 1,000), delta_per_1k = default - variant energy
#   co2e_ug  = delta_uj x g/kWh / 3.6e6, rounded half to even (carbon.units.co2e_ug)
# _efficiency_savings_python applies them row by row; on PostgreSQL the same sums are taken
# in the database, in bigint arithmetic only (numeric is 2-3x slower over a year of rows):
# a year of hourly rows in tens of milliseconds instead of a second of Python. The
# intensity has three decimals, so with mg = g/kWh x 1,000 the CO2e is delta_uj x mg / D,
# D = 3.6e9; to keep the product in range, delta_uj = a x D + b with 0 <= b < D (floor
# division: bigint `/` and MOD truncate toward zero, hence the CASEs for negatives), so
# delta_uj x mg / D = a x mg + (b x mg) / D, and b x mg < 3.6e9 x 1e7 never overflows.
# Each variant's delta per 1,000 comes from the registry as a CASE, so only the ledger's
# efficiency rows are read. tests/inference/test_savings.py holds the two equal on edge
# cases (negative deltas, exact halves, a family without a default).
_EFFICIENCY_SAVINGS_SQL = """
WITH saved AS (
    SELECT u.predictions AS n,
           x.per_k / 1000 - CASE WHEN MOD(x.per_k, 1000) < 0 THEN 1 ELSE 0 END AS delta_uj,
           (u.intensity_g_per_kwh * 1000)::bigint AS mg
    FROM {usage} u
    CROSS JOIN LATERAL (SELECT (CASE u.variant_id {cases} END) * u.predictions AS per_k) x
    WHERE u.tenant_id = %s AND u.hour >= %s AND u.hour < %s AND u.mode = %s AND u.variant_id IN ({ids})
), parts AS (
    SELECT n, delta_uj, mg,
           delta_uj / 3600000000 - CASE WHEN MOD(delta_uj, 3600000000) < 0 THEN 1 ELSE 0 END AS a
    FROM saved
), split AS (
    SELECT n, delta_uj, a * mg + ((delta_uj - a * 3600000000) * mg) / 3600000000 AS q,
           MOD((delta_uj - a * 3600000000) * mg, 3600000000) AS r
    FROM parts
)
SELECT COALESCE(SUM(n), 0)::bigint, COALESCE(SUM(delta_uj), 0)::bigint,
       COALESCE(SUM(q + CASE WHEN 2 * r > 3600000000 OR (2 * r = 3600000000 AND MOD(q, 2) <> 0) THEN 1 ELSE 0 END),
                0)::bigint
FROM split
"""


def _efficiency_savings_sql(*, tenant: Tenant, start: datetime, end: datetime) -> tuple[int, int, int]:
    """(predictions, energy avoided uJ, CO2e avoided ug) of efficiency mode in [start, end)."""
    deltas = _efficiency_deltas()
    if not deltas:
        return 0, 0, 0
    # Ids and deltas are integers from our own registry, formatted with %d: nothing user-given.
    cases = " ".join("WHEN %d THEN %d::bigint" % item for item in sorted(deltas.items()))
    ids = ", ".join("%d" % vid for vid in sorted(deltas))
    sql = _EFFICIENCY_SAVINGS_SQL.format(usage=connection.ops.quote_name(UsageHour._meta.db_table), cases=cases,
                                         ids=ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.id, start, end, Mode.EFFICIENCY])
        predictions, energy_uj, co2e_ug = cursor.fetchone()
    return predictions, energy_uj, co2e_ug


def _efficiency_savings_python(*, tenant: Tenant, start: datetime, end: datetime) -> tuple[int, int, int]:
    """The same, row by row: the embedded SQLite demo, and the reference for the SQL."""
    deltas = _efficiency_deltas()
    rows = (usage_hours(tenant=tenant, start=start, end=end).filter(mode=Mode.EFFICIENCY, variant_id__in=deltas)
            .order_by().values_list("variant_id", "predictions", "intensity_g_per_kwh"))
    energy_avoided = co2e_avoided = predictions = 0
    for variant_id, count, g_per_kwh in rows:
        delta_uj = deltas[variant_id] * count // 1000
        energy_avoided += delta_uj
        co2e_avoided += units.co2e_ug(energy_uj=delta_uj, g_per_kwh=g_per_kwh)
        predictions += count
    return predictions, energy_avoided, co2e_avoided


def savings_for_period(*, tenant: Tenant, start: datetime, end: datetime) -> Savings:
    """CO2e avoided in [start, end) by green scheduling and by efficiency mode, each
    against its counterfactual (Savings.as_json states them)."""
    green_ug, green_jobs = green_savings(tenant=tenant, start=start, end=end)
    efficiency = _efficiency_savings_sql if connection.vendor == "postgresql" else _efficiency_savings_python
    predictions, energy_uj, co2e_ug = efficiency(tenant=tenant, start=start, end=end)
    return Savings(green_scheduling_co2e_ug=green_ug, green_jobs=green_jobs, efficiency_mode_co2e_ug=co2e_ug,
                   efficiency_mode_energy_uj=energy_uj, efficiency_predictions=predictions)
