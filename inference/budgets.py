"""Monthly energy budgets: thresholds, enforcement and sign-off.

- `budgets_evaluate(tenant_ids=...)` compares each budget with the month's metered
  energy (ledger), records an event the first time usage crosses 80% and 100% of the
  current limit, and keeps `EnergyBudget.exceeded` up to date. It runs after every
  metering flush for the tenants in it (so events appear within about a second) and
  from Celery beat.
- The request path asks `budget_blocks(tenant_id=, family_id=)`: an in-process set of
  enforced, exceeded budgets refreshed every BUDGET_CACHE_SECONDS, so enforcement costs
  no database round trip per request. A request may slip through for that long after
  the limit is crossed; the ledger still counts it.
- A tenant admin's sign-off (who, why, new limit) raises the limit and lifts the block
  at once in the process that records it (elsewhere within BUDGET_CACHE_SECONDS).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from carbon import units
from inference.models import BudgetEvent, BudgetSignOff, EnergyBudget, ModelFamily, UsageHour
from tenants.models import Tenant
from tenants.scope import all_tenants_scope, tenant_scope
from tenants.services import audit_record

THRESHOLDS = (80, 100)


class BudgetError(ValueError):
    def __init__(self, detail: str, *, code: str = "invalid_budget"):
        super().__init__(detail)
        self.detail, self.code = detail, code


def month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)


def budget_usage_uj(*, budget: EnergyBudget, month: datetime) -> int:
    rows = UsageHour.objects.filter(tenant_id=budget.tenant_id, hour__gte=month, hour__lt=_next_month(month))
    if budget.family_id:
        rows = rows.filter(variant__version__family_id=budget.family_id)
    return rows.aggregate(total=Sum("energy_uj"))["total"] or 0


def _budget_as_json(budget: EnergyBudget) -> dict:
    return {"family": budget.family.name if budget.family_id else None, "monthly_limit_uj": budget.monthly_limit_uj,
            "enforce": budget.enforce}


def budget_set(*, tenant: Tenant, family_name: str | None, monthly_limit_uj: int, enforce: bool,
               actor: str) -> EnergyBudget:
    """Create or change the tenant's budget (overall, or for one family). Audited.

    Raises BudgetError for an unknown family or a non-positive limit."""
    if monthly_limit_uj <= 0:
        raise BudgetError("monthly_limit_kwh must be positive.")
    family = None
    if family_name:
        family = ModelFamily.objects.filter(name=family_name).first()
        if family is None:
            raise BudgetError(f"No model family {family_name!r}.", code="unknown_model")
    with tenant_scope(tenant.id):
        budget = EnergyBudget.objects.select_for_update().filter(tenant=tenant, family=family).first()
        before = _budget_as_json(budget) if budget else None
        if budget is None:
            budget = EnergyBudget(tenant=tenant, family=family, monthly_limit_uj=monthly_limit_uj, enforce=enforce)
        budget.monthly_limit_uj, budget.enforce = monthly_limit_uj, enforce
        budget.save()
        audit_record(actor=actor, action="budget.set", target_type="energy_budget", target_id=budget.id,
                     tenant=tenant, before=before, after=_budget_as_json(budget))
        _evaluate_one(budget, timezone.now())
    budget_cache_clear()
    return budget


def budget_sign_off(*, tenant: Tenant, budget_id: int, signed_by: str, reason: str,
                    new_limit_uj: int) -> BudgetSignOff:
    """Record a sign-off raising a budget's limit. Raises EnergyBudget.DoesNotExist for
    another tenant's budget and BudgetError when the reason is empty or the new limit
    does not lie above this month's usage."""
    if not reason.strip():
        raise BudgetError("A sign-off needs a reason.")
    now = timezone.now()
    month = month_start(now)
    with tenant_scope(tenant.id):
        budget = EnergyBudget.objects.select_for_update().get(id=budget_id)
        usage = budget_usage_uj(budget=budget, month=month)
        if new_limit_uj <= usage:
            raise BudgetError(f"The new limit must be above this month's usage ({units.uj_to_kwh(usage):.6f} kWh).")
        sign_off = BudgetSignOff.objects.create(
            tenant=tenant, budget=budget, month=month.date(), signed_by=signed_by[:150], reason=reason[:5000],
            previous_limit_uj=budget.monthly_limit_uj, new_limit_uj=new_limit_uj)
        audit_record(actor=signed_by, action="budget.sign_off", target_type="energy_budget", target_id=budget.id,
                     tenant=tenant, before={"monthly_limit_uj": budget.monthly_limit_uj},
                     after={"monthly_limit_uj": new_limit_uj, "reason": reason[:500]})
        budget.monthly_limit_uj = new_limit_uj
        budget.save(update_fields=["monthly_limit_uj", "updated_at"])
        _evaluate_one(budget, now)
    budget_cache_clear()
    return sign_off


def _evaluate_one(budget: EnergyBudget, now: datetime) -> list[BudgetEvent]:
    """Inside the budget's tenant scope: events for thresholds crossed, `exceeded` flag."""
    month = month_start(now)
    usage = budget_usage_uj(budget=budget, month=month)
    created = []
    for pct in THRESHOLDS:
        if usage * 100 >= budget.monthly_limit_uj * pct:
            event, new = BudgetEvent.objects.get_or_create(
                tenant_id=budget.tenant_id, budget=budget, month=month.date(), threshold_pct=pct,
                limit_uj=budget.monthly_limit_uj, defaults={"usage_uj": usage})
            if new:
                created.append(event)
    exceeded = usage >= budget.monthly_limit_uj
    if exceeded != budget.exceeded:
        budget.exceeded = exceeded
        budget.save(update_fields=["exceeded", "updated_at"])
    return created


def budgets_evaluate(*, tenant_ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Evaluate the budgets of some tenants (default all). Returns the events created."""
    now = now or timezone.now()
    with all_tenants_scope():
        budgets = EnergyBudget.all_tenants.all()
        if tenant_ids is not None:
            budgets = budgets.filter(tenant_id__in=tenant_ids)
        pairs = list(budgets.values_list("id", "tenant_id"))
    created = 0
    for budget_id, tenant_id in pairs:
        with tenant_scope(tenant_id):
            budget = EnergyBudget.objects.select_for_update().filter(id=budget_id).first()
            if budget is not None:
                created += len(_evaluate_one(budget, now))
    if created or pairs:
        budget_cache_clear()
    return created


# --- the request path -------------------------------------------------------------------------

_blocked: set[tuple[int, int | None]] = set()
_blocked_until = 0.0
_lock = threading.Lock()


def budget_cache_clear() -> None:
    global _blocked_until
    _blocked_until = 0.0


def budget_blocks(*, tenant_id: int, family_id: int) -> bool:
    """True if an enforced budget of this tenant (overall or for this family) is exceeded."""
    global _blocked, _blocked_until
    if time.monotonic() >= _blocked_until:
        with _lock:
            if time.monotonic() >= _blocked_until:
                with all_tenants_scope(), transaction.atomic():
                    _blocked = set(EnergyBudget.all_tenants.filter(enforce=True, exceeded=True)
                                   .values_list("tenant_id", "family_id"))
                _blocked_until = time.monotonic() + settings.BUDGET_CACHE_SECONDS
    return (tenant_id, None) in _blocked or (tenant_id, family_id) in _blocked


def month_label(day: date) -> str:
    return day.strftime("%Y-%m")
