"""Reads that compose the portal's pages from the other apps' selectors.

The portal owns no tables. Everything here reads through tenants, inference, carbon,
billing and reports; where one of those lacks a read the portal needs, the query is here
with a TODO naming the selector it belongs in. Every function that touches a
tenant-owned table expects to run inside `tenant_scope(tenant.id)` (the portal's
`tenant_page` decorator wraps each request in it).

Units follow the rest of the code: energy in integer microjoules (`_uj`), CO2e in
integer micrograms (`_ug`), money in integer minor units with its currency (`_minor`).
Chart values are the one exception: they are floats in the unit named next to them,
for drawing only.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import BigIntegerField, Case, IntegerField, Min, Sum, Value, When
from django.db.models.functions import Cast, Trunc

from billing.models import Invoice
from billing.periods import Period
from billing.rating import RatingError, TierSpan, UsageRow, billable_start_for, prices_for_window, rate_lines
from billing.selectors import invoice_list
from carbon import units
from carbon.history import history_bucket_means, history_points
from inference.models import BatchJob, ModelVariant, Source
from inference.selectors import (
    Savings,
    batch_job_list,
    batch_jobs_planned_in,
    green_savings,
    savings_for_period,
    usage_hours,
)
from inference.usage import sci_ug_per_prediction
from portal.periods import DashboardPeriod, chart_bucket, intensity_bucket
from reports import formatting as fmt
from reports.models import Report, SlaEvaluation
from reports.selectors import report_list, sla_evaluation_list
from reports.sla import sla_terms_spans
from tenants.models import Membership, Tenant, Tier, TierChange
from tenants.scope import all_tenants_scope
from tenants.selectors import tier_change_list, tier_history

# --- who may see what ----------------------------------------------------------------------


def memberships_for_user(*, user) -> list[Membership]:
    """The user's memberships in every tenant, with the tenant loaded, by tenant name.

    Cross-tenant by nature (a person may belong to several tenants): the escape hatch is
    explicit here, and only the user's own rows are read.
    """
    with all_tenants_scope():
        return list(Membership.all_tenants.filter(user=user).select_related("tenant")
                    .order_by("tenant__name", "tenant__slug"))


# --- dashboard: figures ----------------------------------------------------------------------


@dataclass(frozen=True)
class CostPart:
    """One calendar month's charges: an invoice's total, or a rating preview."""

    start: datetime
    end: datetime
    label: str  # "Nov 2026"
    amount_minor: int | None  # None: could not be priced (see note)
    source: str  # "invoice", "preview" or "unpriced"
    note: str  # invoice status, "month to date", or why it could not be priced
    invoice_id: int | None = None


@dataclass(frozen=True)
class Cost:
    currency: str
    parts: tuple[CostPart, ...]

    @property
    def total_minor(self) -> int:
        return sum(p.amount_minor for p in self.parts if p.amount_minor is not None)

    @property
    def complete(self) -> bool:
        return all(p.amount_minor is not None for p in self.parts)

    @property
    def has_preview(self) -> bool:
        return any(p.source == "preview" for p in self.parts)


@dataclass(frozen=True)
class DashboardSummary:
    predictions: int
    requests: int
    energy_uj: int
    co2e_ug: int  # operational: energy x the hour's grid intensity
    embodied_co2e_ug: int  # SCI's M term
    savings: Savings
    cost: Cost

    @property
    def total_co2e_ug(self) -> int:
        return self.co2e_ug + self.embodied_co2e_ug

    @property
    def sci_ug_per_prediction(self) -> Decimal | None:
        return sci_ug_per_prediction(co2e_ug=self.co2e_ug, embodied_co2e_ug=self.embodied_co2e_ug,
                                     predictions=self.predictions)


class DailyUsage(NamedTuple):
    """The ledger summed over one UTC day, model variant, mode and source (stored units)."""

    day: datetime
    variant_id: int
    mode: str
    source: str
    predictions: int
    requests: int
    energy_uj: int
    co2e_ug: int
    embodied_co2e_ug: int


def usage_daily(*, tenant: Tenant, start: datetime, end: datetime) -> list[DailyUsage]:
    """The ledger of [start, end) summed per UTC day, model variant, mode and source, in one
    scan (a year is ~1,500 rows). The dashboard's totals, its charts and (for whole months)
    the cost preview all come from these rows, so the ledger is read once for them. Sums
    are cast back to bigint in SQL: PostgreSQL's SUM(bigint) is numeric, slow to convert."""
    def total(name):
        return Cast(Sum(name), BigIntegerField())

    rows = (usage_hours(tenant=tenant, start=start, end=end).order_by()
            .annotate(day=Trunc("hour", "day", tzinfo=UTC))
            .values("day", "variant_id", "mode", "source")
            .annotate(p=total("predictions"), r=total("requests"), e=total("energy_uj"), c=total("co2e_ug"),
                      m=total("embodied_co2e_ug"))
            .order_by("day", "variant_id", "mode", "source")
            .values_list("day", "variant_id", "mode", "source", "p", "r", "e", "c", "m"))
    return [DailyUsage(day.astimezone(UTC), *rest) for day, *rest in rows]


def _month_label(start: datetime) -> str:
    return f"{start:%b %Y}"


def _rating_cuts(*, tenant: Tenant, start: datetime, end: datetime) -> list[datetime]:
    """Where rating may cut [start, end) into segments, sorted: month starts, price-version
    starts and tier changes (billing.rating._segments)."""
    from billing.selectors import price_versions_for_window

    cuts = {start, end}
    cursor = Period.containing(start).end
    while cursor < end:
        cuts.add(cursor)
        cursor = Period.containing(cursor).end
    cuts.update(v.effective_from for v in price_versions_for_window(currency=tenant.currency, start=start, end=end)
                if start < v.effective_from < end)
    cuts.update(tier_change_list(tenant=tenant).filter(effective_at__gt=start, effective_at__lt=end)
                .values_list("effective_at", flat=True))
    return sorted(cuts)


def _by_month(rows) -> dict[datetime, list[UsageRow]]:
    out: dict[datetime, list[UsageRow]] = defaultdict(list)
    for row in rows:
        out[datetime(row.hour.year, row.hour.month, 1, tzinfo=UTC)].append(row)
    return out


def _usage_rows_by_month(*, tenant: Tenant, start: datetime, end: datetime,
                         daily: list[DailyUsage] | None = None) -> dict[datetime, list[UsageRow]]:
    """Rating input (billing.rating.UsageRow) for [start, end), split by calendar month.

    Rating needs each usage hour only to find the price version and tier in effect at it,
    and sums everything else (billing.rating._accumulate). So instead of one row per hour
    (inference.selectors.usage_by_hour_mode_source: ~17,000 for a year), the ledger is
    summed between consecutive cuts (month starts, price-version starts, tier changes),
    one row per stretch, mode and source, dated by its first hour: every stretch lies in
    one rating segment, so the lines are exactly those of the hourly rows. When every cut
    falls on midnight UTC and `daily` (usage_daily rows covering [start, end)) is given,
    the days are those stretches and the ledger is not read again.
    """
    bounds = _rating_cuts(tenant=tenant, start=start, end=end)
    if daily is not None and all(b.hour == b.minute == b.second == b.microsecond == 0 for b in bounds):
        return _by_month(UsageRow(r.day, r.mode, r.source, r.predictions, r.energy_uj, r.co2e_ug + r.embodied_co2e_ug)
                         for r in daily if start <= r.day < end)
    inner = bounds[1:-1]
    stretch = (Case(*[When(hour__lt=bound, then=Value(i)) for i, bound in enumerate(inner)],
                    default=Value(len(inner)), output_field=IntegerField())
               if inner else Value(0, output_field=IntegerField()))

    def total(*names):
        expression = Sum(names[0]) if len(names) == 1 else sum((Sum(n) for n in names[1:]), Sum(names[0]))
        return Cast(expression, BigIntegerField())

    rows = (usage_hours(tenant=tenant, start=start, end=end).order_by()
            .annotate(stretch=stretch).values("stretch", "mode", "source")
            .annotate(first=Min("hour"), p=total("predictions"), e=total("energy_uj"),
                      c=total("co2e_ug", "embodied_co2e_ug"))
            .order_by("first", "mode", "source")
            .values_list("first", "mode", "source", "p", "e", "c"))
    return _by_month(UsageRow(first.astimezone(UTC), mode, source, p, e, c) for first, mode, source, p, e, c in rows)


@dataclass(frozen=True)
class _RatingBook:
    """Prices and tier history for a stretch of months, read once (not once per month)."""

    prices: list
    spans: list[TierSpan]


def _rating_book(*, tenant: Tenant, start: datetime, end: datetime) -> _RatingBook:
    billable_start = max(start, tenant.created_at)
    if billable_start >= end:
        return _RatingBook(prices=[], spans=[])
    return _RatingBook(
        prices=prices_for_window(currency=tenant.currency, start=billable_start, end=end),
        spans=[TierSpan(s, e, t) for s, e, t in tier_history(tenant=tenant, start=billable_start, end=end)])


def _preview_total_minor(*, tenant: Tenant, period: Period, rows: list[UsageRow], book: _RatingBook,
                         tier: str | None = None) -> int:
    """What rating would charge for the period now, without SLA credits (those are settled
    only when a month is invoiced). `tier` rates the whole period on one tier (what-if);
    None uses the tenant's real tier history. Raises RatingError (no price in effect).

    TODO(billing): an `invoice_preview_lines(*, tenant, period, tier=None)` in
    billing/rating.py; invoice_lines_for_period also evaluates SLA credits, which writes
    evaluations and refuses a month that has not ended.
    """
    billable_start = billable_start_for(tenant=tenant, period=period)
    if billable_start >= period.end:
        return 0
    spans = book.spans if tier is None else [TierSpan(billable_start, period.end, tier)]
    # rate_lines picks, for each segment, the version in effect and the tier span covering it,
    # so versions and spans of the neighbouring months change nothing.
    lines = rate_lines(period=period, currency=tenant.currency, billable_start=billable_start, tier_spans=spans,
                       usage=rows, prices=book.prices)
    return sum(line.amount_minor for line in lines)


def cost_for_period(*, tenant: Tenant, start: datetime, end: datetime, now: datetime,
                    daily: tuple[datetime, datetime, list[DailyUsage]] | None = None) -> Cost:
    """Charges for every calendar month [start, end) touches and that has begun: the
    invoice's total where the month is invoiced, else a rating preview (month to date for
    the open month, whose base fee covers the whole month). `daily`: (from, to, usage_daily
    rows of [from, to)), reused when the months to preview lie inside it."""
    months = []
    cursor = datetime(start.year, start.month, 1, tzinfo=UTC)
    while cursor < end and cursor <= now:
        period = Period.containing(cursor)
        if period.end > tenant.created_at:
            months.append(period)
        cursor = period.end
    if not months:
        return Cost(currency=tenant.currency, parts=())
    invoices = {i.period_start: i for i in invoice_list(tenant=tenant).filter(
        period_start__gte=months[0].start, period_start__lte=months[-1].start)}
    missing = [m for m in months if m.start not in invoices]
    rows, book = {}, None
    if missing:
        covered = daily is not None and daily[0] <= missing[0].start and missing[-1].end <= daily[1]
        rows = _usage_rows_by_month(tenant=tenant, start=missing[0].start, end=missing[-1].end,
                                    daily=daily[2] if covered else None)
        book = _rating_book(tenant=tenant, start=missing[0].start, end=missing[-1].end)
    parts = []
    for month in months:
        label = _month_label(month.start)
        invoice = invoices.get(month.start)
        if invoice is not None:
            if invoice.currency != tenant.currency:
                parts.append(CostPart(month.start, month.end, label, None, "unpriced",
                                      f"invoiced in {invoice.currency}", invoice.id))
                continue
            parts.append(CostPart(month.start, month.end, label, invoice.total_minor, "invoice",
                                  f"invoice {invoice.get_status_display().split(' (')[0].lower()}", invoice.id))
            continue
        try:
            amount = _preview_total_minor(tenant=tenant, period=month, rows=rows.get(month.start, []), book=book)
        except RatingError as exc:
            parts.append(CostPart(month.start, month.end, label, None, "unpriced", str(exc)))
            continue
        note = "month to date, not invoiced yet" if month.end > now else "not invoiced yet"
        parts.append(CostPart(month.start, month.end, label, amount, "preview", note))
    return Cost(currency=tenant.currency, parts=tuple(parts))


def dashboard_summary(*, tenant: Tenant, period: DashboardPeriod, now: datetime,
                      daily: list[DailyUsage] | None = None,
                      month_daily: tuple[datetime, datetime, list[DailyUsage]] | None = None) -> DashboardSummary:
    """The figures: sums of the ledger (equal to inference.selectors.usage_total), savings
    against their counterfactuals (equal to savings_for_period), and cost. `daily`:
    usage_daily rows of the period; `month_daily`: the same for the whole months it
    touches (reused by the cost preview)."""
    daily = usage_daily(tenant=tenant, start=period.start, end=period.end) if daily is None else daily
    return DashboardSummary(
        predictions=sum(r.predictions for r in daily), requests=sum(r.requests for r in daily),
        energy_uj=sum(r.energy_uj for r in daily), co2e_ug=sum(r.co2e_ug for r in daily),
        embodied_co2e_ug=sum(r.embodied_co2e_ug for r in daily),
        savings=savings_for_period(tenant=tenant, start=period.start, end=period.end),
        cost=cost_for_period(tenant=tenant, start=period.start, end=period.end, now=now, daily=month_daily),
    )


def dashboard_page(*, tenant: Tenant, period: DashboardPeriod, now: datetime) -> dict:
    """The dashboard's figures and chart data for a period. The ledger is read once, per
    day, over the whole months the period touches (the same as the period, but for a
    custom range); totals, savings, charts and cost preview are summed from those rows."""
    months_start = Period.containing(period.start).start
    months_end = Period.containing(period.end - timedelta(microseconds=1)).end
    month_daily = usage_daily(tenant=tenant, start=months_start, end=months_end)
    daily = [row for row in month_daily if period.start <= row.day < period.end]
    return {
        "summary": dashboard_summary(tenant=tenant, period=period, now=now, daily=daily,
                                     month_daily=(months_start, months_end, month_daily)),
        "usage_chart": usage_chart(tenant=tenant, period=period, daily=daily),
        "intensity_chart": intensity_chart(tenant=tenant, period=period, now=now),
    }


# --- dashboard: charts ---------------------------------------------------------------------


def _bucket_starts(start: datetime, end: datetime, bucket: str) -> list[datetime]:
    if bucket == "month":
        cursor = datetime(start.year, start.month, 1, tzinfo=UTC)
    elif bucket == "week":  # ISO weeks start on Monday, as PostgreSQL's date_trunc('week')
        day = datetime(start.year, start.month, start.day, tzinfo=UTC)
        cursor = day - timedelta(days=day.weekday())
    elif bucket == "day":
        cursor = datetime(start.year, start.month, start.day, tzinfo=UTC)
    else:
        cursor = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while cursor < end:
        out.append(cursor)
        if bucket == "month":
            cursor = Period.containing(cursor).end
        else:
            cursor += {"week": timedelta(days=7), "day": timedelta(days=1), "hour": timedelta(hours=1)}[bucket]
    return out


def _bucket_label(moment: datetime, bucket: str) -> str:
    if bucket == "month":
        return f"{moment:%b %Y}"
    if bucket == "week":
        return f"w/c {moment.day} {moment:%b}"
    if bucket == "day":
        return f"{moment.day} {moment:%b}"
    return f"{moment.day} {moment:%b %H:00}"


def _round(value: Decimal, places: int = 6) -> float:
    return float(round(value, places))


def _bucket_of(day: datetime, bucket: str) -> datetime:
    if bucket == "month":
        return day.replace(day=1)
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    return day


def usage_chart(*, tenant: Tenant, period: DashboardPeriod, daily: list[DailyUsage] | None = None) -> dict:
    """CO2e and energy per time bucket (day, week or month), one series per model variant
    and mode, from the daily sums (usage_daily). CO2e includes the embodied share, as the
    headline figure does."""
    bucket = chart_bucket(period)
    daily = usage_daily(tenant=tenant, start=period.start, end=period.end) if daily is None else daily
    rows = [(_bucket_of(r.day, bucket), r.variant_id, r.mode, r.energy_uj, r.co2e_ug + r.embodied_co2e_ug)
            for r in daily]
    names = {v.id: (v.version.family.name, v.name) for v in
             ModelVariant.objects.filter(id__in={r[1] for r in rows}).select_related("version__family")}
    starts = _bucket_starts(period.start, period.end, bucket)
    index = {s: i for i, s in enumerate(starts)}
    families = {family for family, _ in names.values()}
    series: dict[tuple, dict] = {}
    for moment, variant_id, mode, energy_uj, co2e_ug in rows:
        family, variant = names[variant_id]
        entry = series.setdefault((family, variant, mode), {"energy_uj": [0] * len(starts),
                                                            "co2e_ug": [0] * len(starts)})
        i = index.get(moment)
        if i is None:  # cannot happen for buckets inside the period; never drop usage silently
            raise AssertionError(f"usage bucket {moment} outside the chart's buckets")
        entry["energy_uj"][i] += energy_uj
        entry["co2e_ug"][i] += co2e_ug
    per_bucket_co2e = [sum(s["co2e_ug"][i] for s in series.values()) for i in range(len(starts))]
    per_bucket_energy = [sum(s["energy_uj"][i] for s in series.values()) for i in range(len(starts))]
    mass_name, mass_size = fmt.mass_unit(max(per_bucket_co2e, default=0))
    energy_name, energy_size = fmt.energy_unit(max(per_bucket_energy, default=0))
    datasets = []
    for (family, variant, mode), values in sorted(series.items()):
        label = f"{variant} · {mode}" if len(families) <= 1 else f"{family}/{variant} · {mode}"
        datasets.append({
            "label": label, "variant": variant, "mode": mode,
            "co2e": [_round(Decimal(v) / mass_size) for v in values["co2e_ug"]],
            "energy": [_round(Decimal(v) / energy_size) for v in values["energy_uj"]],
        })
    return {"bucket": bucket, "labels": [_bucket_label(s, bucket) for s in starts], "co2e_unit": mass_name,
            "energy_unit": energy_name, "datasets": datasets}


MAX_WINDOWS = 2000  # batch windows drawn per chart (a green tenant runs a few a day)
WINDOWS_LISTED = 12  # listed in words under the chart, newest first


def intensity_chart(*, tenant: Tenant, period: DashboardPeriod, now: datetime) -> dict:
    """The zone's stored grid intensity over the period (hourly for a month, daily means
    beyond) and the tenant's batch-job windows in it.

    Stored history only, one series (carbon.history's choice: most points, then the
    preferred kind): a page never waits on a live grid API. Averaged per bucket in SQL.
    Buckets without stored data are gaps (null), never invented.
    """
    bucket = intensity_bucket(period)
    starts = _bucket_starts(period.start, period.end, bucket)
    index = {s: i for i, s in enumerate(starts)}
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    values: list[float | None] = [None] * len(starts)
    kind = source = ""
    history = history_bucket_means(zone=tenant.grid_zone, start=period.start, end=min(period.end, now),
                                   bucket=bucket)
    if history is not None:
        kind, source = history.kind, history.source
        for moment, mean in history.means.items():
            i = index.get(moment)
            if i is not None:
                values[i] = _round(mean, 1)

    jobs = list(batch_jobs_planned_in(tenant=tenant, start=period.start, end=period.end)[:MAX_WINDOWS])
    marks = [0] * len(starts)
    windows = []
    for job in jobs:
        first = max(bisect_right(starts, job.planned_start) - 1, 0)
        last = bisect_left(starts, job.planned_end)  # buckets starting before the window ends
        for i in range(first, last):
            if starts[i] + step > job.planned_start:
                marks[i] = 1
        windows.append({"id": job.id, "start": job.planned_start, "end": job.planned_end, "status": job.status,
                        "planned_g_per_kwh": job.planned_g_per_kwh, "run_now_g_per_kwh": job.run_now_g_per_kwh,
                        "family": job.family.name})
    known = [v for v in values if v is not None]
    return {"bucket": bucket, "zone": tenant.grid_zone, "kind": kind, "source": source,
            "mean_g_per_kwh": round(sum(known) / len(known), 1) if known else None,
            # drawn by dashboard.js (through json_script): plain numbers and labels only
            "js": {"labels": [_bucket_label(s, bucket) for s in starts], "values": values, "windows": marks},
            "window_count": len(windows), "window_list": windows[-WINDOWS_LISTED:][::-1]}


# --- tier ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierOption:
    tier: str
    base_fee_minor: int  # per calendar month
    per_1k_minor: dict[str, Decimal]  # mode -> minor units per 1,000 online predictions
    batch_per_1k_minor: Decimal
    premium_percent: Decimal
    reference_total_minor: int | None  # the reference month's usage rated on this tier


@dataclass(frozen=True)
class TierPreview:
    current: str
    currency: str
    reference_label: str
    reference_is_partial: bool
    options: dict[str, TierOption]
    unpriced_reason: str  # non-empty when the price book has no price for the tenant's currency
    batch_energy_uj: int  # batch usage in the reference month
    batch_predictions: int
    typical_shift_g_per_kwh: Decimal | None  # mean of (day's mean - day's cleanest hour), last 28 days
    mean_g_per_kwh: Decimal | None
    expected_saving_co2e_ug: int  # batch energy x typical shift
    measured_green_saving_co2e_ug: int  # green-tier batch jobs in the reference month (measured)
    measured_green_jobs: int
    days_left_in_month: Decimal
    changes: list[TierChange] = field(default_factory=list)

    @property
    def other(self) -> str:
        return Tier.GREEN if self.current == Tier.STANDARD else Tier.STANDARD

    @property
    def difference_minor(self) -> int | None:
        """Monthly price change of switching to the other tier, for the reference usage."""
        now, other = self.options.get(self.current), self.options.get(self.other)
        if now is None or other is None or now.reference_total_minor is None or other.reference_total_minor is None:
            return None
        return other.reference_total_minor - now.reference_total_minor


def _typical_shift(*, zone: str, now: datetime) -> tuple[Decimal | None, Decimal | None]:
    """(mean of each day's mean minus its cleanest hour, overall mean) over the last 28 whole
    days of stored history, in gCO2e/kWh; (None, None) without hourly history."""
    end = datetime(now.year, now.month, now.day, tzinfo=UTC)
    points = history_points(zone=zone, start=end - timedelta(days=28), end=end)
    by_day: dict[datetime, list[Decimal]] = defaultdict(list)
    for p in points:
        moment = p.start.astimezone(UTC)
        by_day[datetime(moment.year, moment.month, moment.day, tzinfo=UTC)].append(p.g_per_kwh)
    days = [values for values in by_day.values() if len(values) >= 12]  # skip days with little data
    if not days:
        return None, None
    shifts = [sum(v) / len(v) - min(v) for v in days]
    means = [sum(v) / len(v) for v in days]
    return (sum(shifts) / len(shifts)).quantize(Decimal("0.1")), (sum(means) / len(means)).quantize(Decimal("0.1"))


def tier_preview(*, tenant: Tenant, now: datetime) -> TierPreview:
    """Price and savings of each tier for the tenant's recent usage.

    Reference usage: the last complete month if the tenant existed during it, else the
    current month to date. Both tiers are rated on it with today's price book (without
    SLA credits); the expected saving of green scheduling applies the zone's typical
    daily spread (day's mean minus its cleanest hour, last 28 days) to the batch energy.
    """
    current_month = Period.containing(now)
    previous = Period.previous(now=now)
    reference = previous if tenant.created_at < previous.end else current_month
    rows = _usage_rows_by_month(tenant=tenant, start=reference.start, end=reference.end).get(reference.start, [])
    prices = prices_for_window(currency=tenant.currency, start=now, end=now + timedelta(seconds=1))
    options, unpriced = {}, ""
    book = _rating_book(tenant=tenant, start=reference.start, end=reference.end)
    for tier in Tier.values:
        try:
            total = _preview_total_minor(tenant=tenant, period=reference, rows=rows, book=book, tier=tier)
        except RatingError as exc:
            total, unpriced = None, str(exc)
        if prices:
            p = prices[0]
            options[tier] = TierOption(tier=tier, base_fee_minor=p.base_fee_minor[tier], per_1k_minor=dict(p.per_1k_minor),
                                       batch_per_1k_minor=p.batch_per_1k_minor,
                                       premium_percent=p.green_premium_percent if tier == Tier.GREEN else Decimal(0),
                                       reference_total_minor=total)
    if not prices:
        unpriced = unpriced or f"no {tenant.currency} price is in effect; ask us to add one"
    batch = [r for r in rows if r.source == Source.BATCH]
    batch_energy = sum(r.energy_uj for r in batch)
    shift, mean = _typical_shift(zone=tenant.grid_zone, now=now)
    measured_ug, measured_jobs = green_savings(tenant=tenant, start=reference.start, end=reference.end)
    seconds_left = Decimal((current_month.end - now).total_seconds())
    return TierPreview(
        current=tenant.tier, currency=tenant.currency, reference_label=f"{reference.start:%B %Y}",
        reference_is_partial=reference is current_month, options=options, unpriced_reason=unpriced,
        batch_energy_uj=batch_energy, batch_predictions=sum(r.predictions for r in batch),
        typical_shift_g_per_kwh=shift, mean_g_per_kwh=mean,
        expected_saving_co2e_ug=units.co2e_ug(energy_uj=batch_energy, g_per_kwh=shift) if shift else 0,
        measured_green_saving_co2e_ug=measured_ug, measured_green_jobs=measured_jobs,
        days_left_in_month=(seconds_left / 86400).quantize(Decimal("0.1")),
        changes=list(tier_change_list(tenant=tenant)[:20]),
    )


# --- batch jobs ----------------------------------------------------------------------------------


JOBS_PER_PAGE = 25


def batch_job_page(*, tenant: Tenant, page: str | int | None):
    """One page (django.core.paginator.Page) of the tenant's batch jobs, newest first;
    an out-of-range or malformed page number gives the nearest valid page."""
    from django.core.paginator import Paginator

    found = Paginator(batch_job_list(tenant=tenant), JOBS_PER_PAGE).get_page(page)
    for job in found.object_list:
        job.result_available = batch_result_stored(job=job)  # for the page only: a stat per row
    return found


def batch_result_stored(*, job: BatchJob) -> bool:
    """Whether a finished job's result file is there to download (retention may remove it)."""
    from pathlib import Path

    from django.conf import settings

    if job.status != BatchJob.Status.SUCCEEDED or not job.result_path:
        return False
    return (Path(settings.MEDIA_ROOT) / job.result_path).is_file()


# --- reports, SLA and invoices -------------------------------------------------------------------


@dataclass(frozen=True)
class SlaMonth:
    start: datetime
    label: str
    status: str  # "met", "breached", "no_usage", "pending" (terms but not evaluated yet), "none"
    evaluations: tuple[SlaEvaluation, ...]


def sla_months(*, tenant: Tenant, now: datetime, count: int = 12) -> list[SlaMonth]:
    """The SLA status of each of the last `count` complete months, newest first.

    Reads stored evaluations only (evaluating writes; it happens in the monthly run or
    when a statement is generated), so a month with terms but no evaluation yet says so.
    """
    last = Period.previous(now=now)
    months = [last]
    while len(months) < count:
        months.append(Period.previous(now=months[-1].start))
    first = months[-1]
    found: dict[datetime, list[SlaEvaluation]] = defaultdict(list)
    for evaluation in sla_evaluation_list(tenant=tenant, start=first.start, end=last.end):
        found[evaluation.period_start].append(evaluation)
    spans = sla_terms_spans(tenant=tenant, start=first.start, end=last.end)
    out = []
    for month in months:
        if month.end <= tenant.created_at:
            break
        evaluations = found.get(month.start, [])
        if evaluations:
            outcomes = {e.outcome for e in evaluations}
            status = "breached" if "breached" in outcomes else "met" if "met" in outcomes else "no_usage"
        elif any(s.start < month.end and s.end > month.start for s in spans):
            status = "pending"
        else:
            status = "none"
        out.append(SlaMonth(start=month.start, label=f"{month.start:%B %Y}", status=status,
                            evaluations=tuple(evaluations)))
    return out


def reports_page(*, tenant: Tenant, now: datetime) -> dict:
    """Everything the reports-and-invoices page lists."""
    return {
        "reports": list(report_list(tenant=tenant)[:100]),
        "invoices": list(invoice_list(tenant=tenant)[:36]),
        "sla_months": sla_months(tenant=tenant, now=now),
    }


def report_file_get(*, tenant: Tenant, report_id: int) -> Report | None:
    """A ready report of the tenant, or None (missing, another tenant's, or not ready)."""
    from reports.models import ReportStatus
    from reports.selectors import report_get

    try:
        report = report_get(tenant=tenant, report_id=report_id)
    except Report.DoesNotExist:
        return None
    return report if report.status == ReportStatus.READY else None


def invoice_with_lines(*, tenant: Tenant, invoice_id: int) -> Invoice | None:
    from billing.selectors import invoice_get

    try:
        return invoice_get(tenant=tenant, invoice_id=invoice_id)
    except Invoice.DoesNotExist:
        return None

