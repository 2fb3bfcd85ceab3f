"""The usage report behind GET /v1/usage: predictions, kWh, CO2e and SCI per period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncDay, TruncHour, TruncMonth
from django.utils import timezone

from carbon import units
from inference.selectors import USAGE_SUMS, savings_for_period, usage_hours
from tenants.models import Tenant

TRUNC = {"hour": TruncHour, "day": TruncDay, "month": TruncMonth}
GROUPS = {"model": ["variant__version__family__name", "variant__name"], "mode": ["mode"], "source": ["source"]}
MAX_HOURLY_SPAN = timedelta(days=93)  # ~2,200 rows per group: enough for a quarter


class UsageQueryError(ValueError):
    pass


def sci_ug_per_prediction(*, co2e_ug: int, embodied_co2e_ug: int, predictions: int) -> Decimal | None:
    """SCI = ((E x I) + M) per R, R = one prediction; in micrograms CO2e."""
    if not predictions:
        return None
    return (Decimal(co2e_ug + embodied_co2e_ug) / Decimal(predictions)).quantize(Decimal("0.001"))


def _figures(sums: dict) -> dict:
    out = {name: sums.get(name) or 0 for name in USAGE_SUMS}
    out["energy_kwh"] = f"{units.uj_to_kwh(out['energy_uj']):.12f}"
    out["co2e_g"] = f"{units.ug_to_g(out['co2e_ug'] + out['embodied_co2e_ug']):.6f}"
    sci = sci_ug_per_prediction(co2e_ug=out["co2e_ug"], embodied_co2e_ug=out["embodied_co2e_ug"],
                                predictions=out["predictions"])
    out["sci_ug_per_prediction"] = None if sci is None else str(sci)
    return out


def usage_report(*, tenant: Tenant, start: datetime | None, end: datetime | None, granularity: str,
                 group_by: list[str]) -> dict:
    """Raises UsageQueryError for a bad range, granularity or grouping."""
    now = timezone.now()
    end = end or now
    start = start or datetime(now.year, now.month, 1, tzinfo=UTC)
    if start >= end:
        raise UsageQueryError("start must be before end.")
    if granularity not in TRUNC:
        raise UsageQueryError("granularity must be hour, day or month.")
    unknown = set(group_by) - set(GROUPS)
    if unknown:
        raise UsageQueryError(f"group_by accepts {', '.join(GROUPS)}; not {', '.join(sorted(unknown))}.")
    if granularity == "hour" and end - start > MAX_HOURLY_SPAN:
        raise UsageQueryError("hourly usage covers at most 93 days per request; use granularity=day.")

    qs = usage_hours(tenant=tenant, start=start, end=end)
    group_fields = [f for g in group_by for f in GROUPS[g]]
    rows = (
        qs.annotate(period=TRUNC[granularity]("hour", tzinfo=UTC))
        .values("period", *group_fields)
        .annotate(**{name: Sum(name) for name in USAGE_SUMS})
        .order_by("period", *group_fields)
    )
    out_rows = []
    for row in rows:
        item = {"period": row["period"].astimezone(UTC).isoformat().replace("+00:00", "Z")}
        if "model" in group_by:
            item["family"] = row["variant__version__family__name"]
            item["variant"] = row["variant__name"]
        if "mode" in group_by:
            item["mode"] = row["mode"]
        if "source" in group_by:
            item["source"] = row["source"]
        item.update(_figures(row))
        out_rows.append(item)
    totals = _figures(qs.aggregate(**{name: Sum(name) for name in USAGE_SUMS}))
    return {
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "granularity": granularity,
        "group_by": group_by,
        "totals": totals,
        "savings": savings_for_period(tenant=tenant, start=start, end=end).as_json(),
        "rows": out_rows,
    }
