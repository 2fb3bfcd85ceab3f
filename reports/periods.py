"""Report periods: a calendar year ("2026") or a month ("2026-11"), UTC, half-open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from billing.periods import Period, PeriodError

_YEAR = re.compile(r"^(\d{4})$")


class ReportPeriodError(ValueError):
    """A period label that is malformed, or one that has no complete month yet."""


@dataclass(frozen=True)
class ReportPeriod:
    label: str  # "2026" or "2026-11"
    start: datetime
    end: datetime  # excluded

    @property
    def is_year(self) -> bool:
        return len(self.label) == 4

    def months(self) -> list[Period]:
        out, cursor = [], Period.containing(self.start)
        while cursor.start < self.end:
            out.append(cursor)
            cursor = Period.containing(cursor.end)
        return out


def report_period_parse(label: str) -> ReportPeriod:
    """'2026' -> the year, '2026-11' -> the month. Raises ReportPeriodError saying what is expected."""
    label = (label or "").strip()
    match = _YEAR.match(label)
    if match:
        year = int(match.group(1))
        if not 2000 <= year <= 9998:
            raise ReportPeriodError(f"no such year: {label}")
        return ReportPeriod(label=label, start=datetime(year, 1, 1, tzinfo=UTC),
                            end=datetime(year + 1, 1, 1, tzinfo=UTC))
    try:
        month = Period.parse(label)
    except PeriodError:
        raise ReportPeriodError(f"period {label!r} must be a year (2026) or a month (2026-11)") from None
    return ReportPeriod(label=month.label, start=month.start, end=month.end)


def complete_months(period: ReportPeriod, *, now: datetime) -> ReportPeriod:
    """The part of `period` made of months that have ended by `now` (a year to date).

    Raises ReportPeriodError when not even one month of it has ended: a report is only
    made of finished months, so the same inputs always give the same figures.
    """
    current_month_start = Period.containing(now).start
    end = min(period.end, current_month_start)
    if end <= period.start:
        what = "month" if not period.is_year else "year"
        raise ReportPeriodError(f"the {what} {period.label} has no complete month yet; reports cover finished "
                                "months only")
    return ReportPeriod(label=period.label, start=period.start, end=end)
