"""The SLA-credit hook: how the SLA work adds negative lines to an invoice.

Rating calls `sla_credit_lines(tenant=..., period=...)` once per invoice. It returns
whatever the registered providers return, checked; with no provider registered it
returns no lines. The SLA issue registers its provider once at start-up, e.g. in its
AppConfig.ready():

    from billing.credits import CreditLine, sla_credit_provider_register

    @sla_credit_provider_register
    def sla_credits(*, tenant, period) -> list[CreditLine]:
        ...

A provider must be deterministic for a (tenant, period): an invoice is rated once
and its lines are then frozen, so credits found later belong on a later invoice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.periods import Period
    from tenants.models import Tenant


class CreditError(ValueError):
    """A provider returned a credit line that cannot go on an invoice."""


@dataclass(frozen=True)
class CreditLine:
    """One SLA credit, in the tenant's currency. amount_minor is negative (or zero)."""

    description: str  # shown on the invoice, e.g. "SLA credit: availability 99.2% < 99.9%"
    amount_minor: int
    span_start: datetime  # what the credit covers, inside the period
    span_end: datetime
    reference: str = ""  # provider's own id, e.g. "sla-evaluation:42", kept on the line


SlaCreditProvider = Callable[..., Iterable[CreditLine]]
_providers: list[SlaCreditProvider] = []


def sla_credit_provider_register(provider: SlaCreditProvider) -> SlaCreditProvider:
    """Add a provider (usable as a decorator). Registering the same one twice is a no-op."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


def sla_credit_provider_unregister(provider: SlaCreditProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def sla_credit_lines(*, tenant: Tenant, period: Period) -> list[CreditLine]:
    """Every registered provider's credits for the tenant and period, validated.

    Raises CreditError for a positive amount, a non-integer amount, an empty
    description or a span outside the period: a bad credit must stop the invoice,
    not silently charge or refund the wrong amount.
    """
    lines: list[CreditLine] = []
    for provider in _providers:
        for line in provider(tenant=tenant, period=period):
            if not isinstance(line, CreditLine):
                raise CreditError(f"{provider.__name__} returned {type(line).__name__}, not CreditLine")
            if isinstance(line.amount_minor, bool) or not isinstance(line.amount_minor, int):
                raise CreditError(f"credit {line.description!r}: amount_minor must be an int of minor units")
            if line.amount_minor > 0:
                raise CreditError(f"credit {line.description!r} is positive ({line.amount_minor}); credits reduce "
                                  "the invoice")
            if not line.description.strip():
                raise CreditError("a credit line needs a description")
            if not (period.start <= line.span_start < line.span_end <= period.end):
                raise CreditError(f"credit {line.description!r} covers {line.span_start}..{line.span_end}, outside "
                                  f"period {period.label}")
            lines.append(line)
    return lines
