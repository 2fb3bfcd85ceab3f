"""Values the carbon selectors return. Plain frozen dataclasses, safe to cache and share.

Intensities are gCO2e/kWh as Decimal with three decimal places (the unit is in the
field name, `_g_per_kwh`). Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

DIRECT = "direct"  # combustion only (GHG Protocol scope 2 style)
LIFECYCLE = "lifecycle"  # includes upstream and construction emissions (LCA)
KINDS = (DIRECT, LIFECYCLE)

# How a forecast was made, strongest first.
METHOD_HISTORY = "history"  # stored measurements (a past range: a perfect forecast)
METHOD_LIVE = "live"  # a live provider's forecast or recent actuals
METHOD_SEASONAL_NAIVE = "seasonal-naive"  # stored values one week (or day) earlier
METHOD_ANNUAL_AVERAGE = "annual-average"  # one flat value: nothing to shift against
METHODS = (METHOD_HISTORY, METHOD_LIVE, METHOD_SEASONAL_NAIVE, METHOD_ANNUAL_AVERAGE)

G_PER_KWH_QUANTUM = Decimal("0.001")


@dataclass(frozen=True)
class IntensityPoint:
    """Grid intensity over [start, end) for one zone."""

    start: datetime
    end: datetime
    g_per_kwh: Decimal
    kind: str  # DIRECT or LIFECYCLE
    source: str  # e.g. "electricitymaps-export", "uk-carbon-intensity", "codecarbon-annual-average:GBR:2023"
    is_forecast: bool = False  # a prediction, not a measurement
    is_average: bool = False  # an annual average standing in for unknown hourly data

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Forecast:
    """Intensity points for a zone and range, and how they were obtained.

    `provider` produced the points first in the chain; `filled_by` lists providers
    whose points (of the same kind only) filled slots the first one did not cover.
    `notes` say which providers were skipped or failed, and why.
    """

    zone: str
    start: datetime
    end: datetime
    points: tuple[IntensityPoint, ...]
    provider: str
    method: str  # one of METHODS, of `provider`
    kind: str
    filled_by: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def is_live(self) -> bool:
        return self.method == METHOD_LIVE

    @property
    def is_seasonal_naive(self) -> bool:
        return self.method == METHOD_SEASONAL_NAIVE

    @property
    def is_annual_average(self) -> bool:
        return self.method == METHOD_ANNUAL_AVERAGE


@dataclass(frozen=True)
class WindowPlan:
    """When to run a job of `duration` inside [start, end), and what it saves.

    `run_now_g_per_kwh` is the counterfactual: the mean over the window that starts at
    `start`, from the same forecast, so savings are measured on one basis.
    `is_measurable` is False when only an annual average was known: then the plan is
    to run now and `explanation` says why shifting saves nothing measurable.
    """

    zone: str
    start: datetime
    end: datetime
    duration: timedelta
    interruptible: bool
    window_start: datetime
    window_end: datetime
    # The periods the job runs in, in order: one for a contiguous plan; adjacent chosen
    # slots are merged for an interruptible one. Total length is `duration`.
    runs: tuple[tuple[datetime, datetime], ...]
    mean_g_per_kwh: Decimal
    run_now_g_per_kwh: Decimal
    provider: str
    forecast_method: str
    kind: str
    is_measurable: bool
    explanation: str
    slot: timedelta  # the slot length the search used (CARBON_PLAN_SLOT_MINUTES)

    @property
    def saving_g_per_kwh(self) -> Decimal:
        return self.run_now_g_per_kwh - self.mean_g_per_kwh

    @property
    def saving_fraction(self) -> Decimal:
        """Share of the run-now emissions avoided (0 when nothing is measurable)."""
        if not self.is_measurable or self.run_now_g_per_kwh == 0:
            return Decimal(0)
        return (self.saving_g_per_kwh / self.run_now_g_per_kwh).quantize(Decimal("0.0001"))


def quantize_g_per_kwh(value: float | int | Decimal | str) -> Decimal:
    """The one rounding rule for intensities: three decimals, half-even.

    A float is first rounded to nine decimals, so binary noise in a computed mean
    (123.45649999999 for 123.4565) cannot flip a half-way case.
    """
    if isinstance(value, float):
        value = repr(round(value, 9))
    return Decimal(str(value)).quantize(G_PER_KWH_QUANTUM)
