"""Rating: the usage ledger of one tenant and month -> invoice lines.

`rate_lines` is the pure core: rows + price versions + tier spans in, lines out; no
database, so bench/rating.py runs it on in-memory rows. `invoice_lines_for_period`
is the thin database wrapper the monthly run calls.

Rules (docs/billing.md has the worked examples):

* The period is a half-open UTC month [start, end). A tenant created inside it is
  billed from its created_at ("billable start").
* The billable window is cut into segments at every price-version start and every
  tier change inside it. Each segment has one price version and one tier, and every
  line belongs to exactly one segment, so a price change or a tier change in the
  middle of the month splits the lines there.
* A usage hour [h, h+1h) is rated with the price and tier in effect at h.
* Base fee: per segment, seconds in the segment x that tier's monthly fee / seconds in
  the month (proration by time).
* Predictions: per segment and mode (online requests), count x price per 1,000 /
  1,000. Batch predictions (any mode) use the batch price.
* Green premium: per price version, green_premium_percent of the sum of the amounts
  of the usage lines (predictions and batch) rated on the green tier. The green base
  fee is not marked up: the green tier has its own base fee.
* SLA credits: negative lines from billing.credits, appended last.
* Rounding: each line's amount is computed exactly (Fractions of a minor unit) and
  rounded once by billing.money.round_minor; nothing is rounded before that, so
  sub-cent prices per 1,000 never drift. The premium is computed on the rounded
  amounts of the lines it marks up, so it can be checked from the invoice itself.
* Each usage line carries the energy and CO2e (operational + embodied) of the rows it
  charges; the invoice's totals equal the ledger's for the period.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from billing.credits import CreditLine
from billing.money import line_amount_minor
from billing.periods import Period

if TYPE_CHECKING:
    from tenants.models import Tenant

MODES = ("standard", "efficiency", "accurate")  # inference.models.Mode, in invoice order
TIERS = ("standard", "green")
BATCH = "batch"
ONLINE = "online"
PER_1K = 1000
PERCENT = 100
_MICROSECOND = timedelta(microseconds=1)


class RatingError(ValueError):
    """Usage cannot be rated (no price in effect, an unknown mode, rows outside the period)."""


@dataclass(frozen=True)
class Prices:
    """One price version's values (billing.models.PriceVersion without the ORM)."""

    effective_from: datetime
    currency: str
    base_fee_minor: Mapping[str, int]  # tier -> monthly fee
    per_1k_minor: Mapping[str, Decimal]  # mode -> price per 1,000 online predictions
    batch_per_1k_minor: Decimal
    green_premium_percent: Decimal
    version_id: int | None = None


@dataclass(frozen=True)
class TierSpan:
    start: datetime
    end: datetime
    tier: str


class UsageRow(NamedTuple):
    """Ledger usage of one hour (and mode and source); several rows may share a key."""

    hour: datetime
    mode: str
    source: str  # "online" or "batch"
    predictions: int
    energy_uj: int
    co2e_ug: int  # operational + embodied


@dataclass(frozen=True)
class LineDraft:
    kind: str  # billing.models.LineKind
    description: str
    span_start: datetime
    span_end: datetime
    quantity: Decimal
    unit_price_minor: Decimal
    unit_divisor: int
    amount_minor: int
    energy_uj: int = 0
    co2e_ug: int = 0
    mode: str = ""
    tier: str = ""
    price_version_id: int | None = None
    reference: str = ""


@dataclass
class _Segment:
    start: datetime
    end: datetime
    tier: str
    prices: Prices
    usage: dict[str, list[int]] = field(default_factory=dict)  # mode or "batch" -> [predictions, uj, ug]


def _segments(*, period: Period, currency: str, billable_start: datetime, prices: Sequence[Prices],
              tier_spans: Sequence[TierSpan]) -> list[_Segment]:
    ordered = sorted(prices, key=lambda p: p.effective_from)
    cuts = {billable_start, period.end}
    cuts.update(p.effective_from for p in ordered if billable_start < p.effective_from < period.end)
    cuts.update(s.start for s in tier_spans if billable_start < s.start < period.end)
    bounds = sorted(cuts)
    starts = [p.effective_from for p in ordered]
    segments = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        index = bisect_right(starts, start) - 1
        if index < 0:
            raise RatingError(f"no {currency} price in effect at {start:%Y-%m-%d %H:%M}Z; add a price version "
                              "starting at or before it in the admin")
        tier = next((s.tier for s in tier_spans if s.start <= start < s.end), None)
        if tier not in TIERS:
            raise RatingError(f"no known tier at {start:%Y-%m-%d %H:%M}Z (got {tier!r})")
        segments.append(_Segment(start=start, end=end, tier=tier, prices=ordered[index]))
    return segments


def _accumulate(segments: list[_Segment], usage: Iterable[UsageRow], period: Period) -> None:
    """Sum usage rows into their segments. The hot loop of the monthly run (see bench/rating.py)."""
    starts = [s.start for s in segments]
    accumulators = [s.usage for s in segments]
    segment_of_hour: dict[datetime, dict] = {}
    period_start, period_end = period.start, period.end
    online, batch = ONLINE, BATCH  # locals: this loop runs once per ledger row
    last_hour = acc = None
    for hour, mode, source, predictions, energy_uj, co2e_ug in usage:
        if hour is not last_hour:
            acc = segment_of_hour.get(hour)
            if acc is None:
                if not period_start <= hour < period_end:
                    raise RatingError(f"usage row at {hour} lies outside period {period.label}")
                # An hour before the billable start (tenant created mid-hour) joins the first segment.
                acc = segment_of_hour[hour] = accumulators[max(bisect_right(starts, hour) - 1, 0)]
            last_hour = hour
        key = mode if source == online else batch
        sums = acc.get(key)
        if sums is None:
            if key not in MODES and key != batch:
                raise RatingError(f"unknown mode {mode!r} (or source {source!r}) at {hour}")
            acc[key] = [predictions, energy_uj, co2e_ug]
        else:
            sums[0] += predictions
            sums[1] += energy_uj
            sums[2] += co2e_ug


def _days(seconds: Decimal) -> str:
    days = seconds / 86400
    return f"{days:.2f}".rstrip("0").rstrip(".")


def _line(*, kind: str, description: str, segment: _Segment, quantity: Decimal, unit_price: Decimal,
          divisor: int, **extra) -> LineDraft:
    return LineDraft(
        kind=kind, description=description, span_start=segment.start, span_end=segment.end, quantity=quantity,
        unit_price_minor=unit_price, unit_divisor=divisor,
        amount_minor=line_amount_minor(quantity=quantity, unit_price_minor=unit_price, unit_divisor=divisor),
        tier=segment.tier, price_version_id=segment.prices.version_id, **extra)


def rate_lines(*, period: Period, currency: str, prices: Sequence[Prices], tier_spans: Sequence[TierSpan],
               usage: Iterable[UsageRow], billable_start: datetime | None = None,
               credits: Sequence[CreditLine] = ()) -> list[LineDraft]:
    """Invoice lines for one tenant and period (pure; see the module docstring for the rules).

    `prices` are the currency's versions (any that start before period.end), `tier_spans`
    cover [billable_start, period.end), `usage` rows lie inside the period. Raises
    RatingError when no price is in effect somewhere in the window, or for an unknown
    mode, or rows outside the period. Returns [] when the tenant was not billable.
    """
    billable_start = max(billable_start or period.start, period.start)
    if billable_start >= period.end:
        return []
    prices = [p for p in prices if p.currency == currency]
    segments = _segments(period=period, currency=currency, billable_start=billable_start, prices=prices,
                         tier_spans=tier_spans)
    _accumulate(segments, usage, period)

    lines: list[LineDraft] = []
    green_usage_by_version: dict[object, tuple[Prices, list[LineDraft]]] = {}
    month_seconds = period.seconds
    for segment in segments:
        price = segment.prices
        micros = (segment.end - segment.start) // _MICROSECOND
        seconds = Decimal(micros).scaleb(-6)
        fee = Decimal(price.base_fee_minor[segment.tier])
        lines.append(_line(kind="base_fee", segment=segment, quantity=seconds, unit_price=fee, divisor=month_seconds,
                           description=f"Base fee, {segment.tier} tier ({_days(seconds)} of "
                                       f"{month_seconds // 86400} days)"))
        usage_lines = []
        for mode in MODES:
            sums = segment.usage.get(mode)
            if sums and (sums[0] or sums[1] or sums[2]):
                usage_lines.append(_line(
                    kind="predictions", segment=segment, mode=mode, quantity=Decimal(sums[0]),
                    unit_price=Decimal(price.per_1k_minor[mode]), divisor=PER_1K, energy_uj=sums[1],
                    co2e_ug=sums[2], description=f"{mode.capitalize()}-mode predictions (per 1,000)"))
        sums = segment.usage.get(BATCH)
        if sums and (sums[0] or sums[1] or sums[2]):
            usage_lines.append(_line(
                kind="batch_predictions", segment=segment, quantity=Decimal(sums[0]),
                unit_price=Decimal(price.batch_per_1k_minor), divisor=PER_1K, energy_uj=sums[1], co2e_ug=sums[2],
                description="Batch predictions (per 1,000)"))
        lines.extend(usage_lines)
        if segment.tier == "green" and usage_lines:
            key = price.version_id if price.version_id is not None else price.effective_from
            green_usage_by_version.setdefault(key, (price, []))[1].extend(usage_lines)

    for price, marked_up in green_usage_by_version.values():
        base = sum(line.amount_minor for line in marked_up)
        percent = Decimal(price.green_premium_percent)
        if base == 0 or percent == 0:
            continue
        lines.append(LineDraft(
            kind="green_premium", description=f"Green tier premium ({percent.normalize():f}% of green-tier usage)",
            span_start=min(line.span_start for line in marked_up), span_end=max(line.span_end for line in marked_up),
            quantity=Decimal(base), unit_price_minor=percent, unit_divisor=PERCENT,
            amount_minor=line_amount_minor(quantity=base, unit_price_minor=percent, unit_divisor=PERCENT),
            tier="green", price_version_id=price.version_id))

    for credit in credits:
        lines.append(LineDraft(
            kind="sla_credit", description=credit.description, span_start=credit.span_start,
            span_end=credit.span_end, quantity=Decimal(1), unit_price_minor=Decimal(credit.amount_minor),
            unit_divisor=1, amount_minor=credit.amount_minor, reference=credit.reference))
    return lines



# --- the database wrapper ----------------------------------------------------------------

def prices_for_window(*, currency: str, start: datetime, end: datetime) -> list[Prices]:
    """The currency's price versions that matter for [start, end): the one in effect at
    start and every one starting inside."""
    from billing.selectors import price_versions_for_window

    return [
        Prices(
            effective_from=v.effective_from, currency=v.currency,
            base_fee_minor={"standard": v.base_fee_standard_minor, "green": v.base_fee_green_minor},
            per_1k_minor={"standard": v.standard_per_1k_minor, "efficiency": v.efficiency_per_1k_minor,
                          "accurate": v.accurate_per_1k_minor},
            batch_per_1k_minor=v.batch_per_1k_minor, green_premium_percent=v.green_premium_percent,
            version_id=v.id,
        )
        for v in price_versions_for_window(currency=currency, start=start, end=end)
    ]


def billable_start_for(*, tenant: Tenant, period: Period) -> datetime:
    """A tenant is billed from the later of the period start and its creation."""
    return max(period.start, tenant.created_at)


def invoice_lines_for_period(*, tenant: Tenant, period: Period) -> list[LineDraft]:
    """The invoice lines for a tenant's usage in the half-open `period` (nothing is written).

    Reads the ledger through inference.selectors, the tier history through
    tenants.selectors, prices from the price book and credits from the SLA hook.
    Raises RatingError (no price in effect, bad usage) or billing.credits.CreditError.
    Returns [] when the tenant did not exist during the period.
    """
    from billing.credits import sla_credit_lines
    from inference.selectors import usage_by_hour_mode_source
    from tenants.scope import tenant_scope
    from tenants.selectors import tier_history

    billable_start = billable_start_for(tenant=tenant, period=period)
    if billable_start >= period.end:
        return []
    with tenant_scope(tenant.id):
        spans = [TierSpan(start, end, tier)
                 for start, end, tier in tier_history(tenant=tenant, start=billable_start, end=period.end)]
        rows = [UsageRow(r["hour"], r["mode"], r["source"], r["predictions"], r["energy_uj"],
                         r["co2e_ug"] + r["embodied_co2e_ug"])
                for r in usage_by_hour_mode_source(tenant=tenant, start=period.start, end=period.end)]
    return rate_lines(
        period=period, currency=tenant.currency, billable_start=billable_start, tier_spans=spans, usage=rows,
        prices=prices_for_window(currency=tenant.currency, start=billable_start, end=period.end),
        credits=sla_credit_lines(tenant=tenant, period=period),
    )
