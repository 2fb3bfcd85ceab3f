"""The dashboard's reporting periods: a month, a quarter, a year or a custom range of days.

All periods are half-open UTC intervals [start, end). In URLs:

    ?p=2026-11          a month
    ?p=2026-Q4          a quarter
    ?p=2026             a year
    ?from=2026-10-05&to=2026-11-20   custom: whole days, both included
    (nothing)           the current month

Pure functions: no database, so the parsing rules are tested on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# A custom range is at most a year and a day (the carbon history reads at most 366 days).
MAX_CUSTOM_DAYS = 366

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December")


class DashboardPeriodError(ValueError):
    """A period the dashboard cannot show; the message says what to send instead."""


@dataclass(frozen=True)
class DashboardPeriod:
    kind: str  # "month", "quarter", "year" or "custom"
    start: datetime  # UTC, included
    end: datetime  # UTC, excluded
    title: str  # "November 2026", "Q4 2026", "2026", "5 Oct – 20 Nov 2026"
    query: str  # the query string that selects this period ("p=2026-11")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def previous(self) -> DashboardPeriod | None:
        return _shift(self, -1)

    def next(self) -> DashboardPeriod | None:
        return _shift(self, +1)

    def months(self) -> list[tuple[datetime, datetime]]:
        """The calendar months [start, end) this period touches, in order."""
        out, cursor = [], datetime(self.start.year, self.start.month, 1, tzinfo=UTC)
        while cursor < self.end:
            following = _add_months(cursor, 1)
            out.append((cursor, following))
            cursor = following
        return out


def _add_months(moment: datetime, count: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _year_ok(year: int) -> int:
    if not 2000 <= year <= 9998:
        raise DashboardPeriodError(f"no such year: {year}; choose one from 2000 on")
    return year


def month_period(year: int, month: int) -> DashboardPeriod:
    start = datetime(_year_ok(year), month, 1, tzinfo=UTC)
    return DashboardPeriod(kind="month", start=start, end=_add_months(start, 1),
                           title=f"{_MONTH_NAMES[month - 1]} {year}", query=f"p={year:04d}-{month:02d}")


def quarter_period(year: int, quarter: int) -> DashboardPeriod:
    start = datetime(_year_ok(year), 3 * (quarter - 1) + 1, 1, tzinfo=UTC)
    return DashboardPeriod(kind="quarter", start=start, end=_add_months(start, 3), title=f"Q{quarter} {year}",
                           query=f"p={year:04d}-Q{quarter}")


def year_period(year: int) -> DashboardPeriod:
    start = datetime(_year_ok(year), 1, 1, tzinfo=UTC)
    return DashboardPeriod(kind="year", start=start, end=datetime(year + 1, 1, 1, tzinfo=UTC), title=str(year),
                           query=f"p={year:04d}")


def custom_period(first: date, last: date) -> DashboardPeriod:
    """Whole UTC days from `first` to `last`, both included."""
    if last < first:
        raise DashboardPeriodError("the custom range ends before it starts; swap the two dates")
    days = (last - first).days + 1
    if days > MAX_CUSTOM_DAYS:
        raise DashboardPeriodError(f"a custom range covers at most {MAX_CUSTOM_DAYS} days; this one has {days}")
    _year_ok(first.year)
    _year_ok(last.year)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = start + timedelta(days=days)
    if first.year == last.year:
        title = f"{first.day} {_MONTH_NAMES[first.month - 1][:3]} – {last.day} {_MONTH_NAMES[last.month - 1][:3]} {last.year}"
    else:
        title = (f"{first.day} {_MONTH_NAMES[first.month - 1][:3]} {first.year} – "
                 f"{last.day} {_MONTH_NAMES[last.month - 1][:3]} {last.year}")
    return DashboardPeriod(kind="custom", start=start, end=end, title=title,
                           query=f"from={first.isoformat()}&to={last.isoformat()}")


def current_period(kind: str, *, now: datetime) -> DashboardPeriod:
    now = now.astimezone(UTC)
    if kind == "quarter":
        return quarter_period(now.year, (now.month - 1) // 3 + 1)
    if kind == "year":
        return year_period(now.year)
    return month_period(now.year, now.month)


def dashboard_period_parse(*, p: str | None, first: str | None, last: str | None, now: datetime) -> DashboardPeriod:
    """The period a dashboard URL asks for. Raises DashboardPeriodError saying what is wrong."""
    if first or last:
        if not (first and last):
            raise DashboardPeriodError("a custom range needs both a first and a last day")
        try:
            return custom_period(date.fromisoformat(first), date.fromisoformat(last))
        except ValueError as exc:
            if isinstance(exc, DashboardPeriodError):
                raise
            raise DashboardPeriodError("days look like 2026-11-20 (year-month-day)") from None
    label = (p or "").strip()
    if not label:
        return current_period("month", now=now)
    if match := _MONTH.match(label):
        month = int(match.group(2))
        if not 1 <= month <= 12:
            raise DashboardPeriodError(f"no such month: {label}")
        return month_period(int(match.group(1)), month)
    if match := _QUARTER.match(label):
        return quarter_period(int(match.group(1)), int(match.group(2)))
    if match := _YEAR.match(label):
        return year_period(int(match.group(1)))
    raise DashboardPeriodError(f"period {label!r} must be a month (2026-11), a quarter (2026-Q4) or a year (2026)")


def _shift(period: DashboardPeriod, step: int) -> DashboardPeriod | None:
    try:
        if period.kind == "month":
            start = _add_months(period.start, step)
            return month_period(start.year, start.month)
        if period.kind == "quarter":
            start = _add_months(period.start, 3 * step)
            return quarter_period(start.year, (start.month - 1) // 3 + 1)
        if period.kind == "year":
            return year_period(period.start.year + step)
        length = period.end - period.start
        start = period.start + step * length
        return custom_period(start.date(), (start + length - timedelta(days=1)).date())
    except DashboardPeriodError:
        return None


def chart_bucket(period: DashboardPeriod) -> str:
    """How finely the usage charts split the period: about 30 bars or fewer."""
    if period.days <= 62:
        return "day"
    if period.days <= 190:
        return "week"
    return "month"


def intensity_bucket(period: DashboardPeriod) -> str:
    """Hourly intensity for a month (batch windows are hours long); daily means beyond."""
    return "hour" if period.days <= 35 else "day"
