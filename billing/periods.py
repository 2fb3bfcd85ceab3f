"""Billing periods: calendar months in UTC, half-open [start, end)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_LABEL = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A period label that is malformed, or a period that cannot be billed yet."""


@dataclass(frozen=True, order=True)
class Period:
    start: datetime  # first instant of the month, UTC
    end: datetime  # first instant of the next month, UTC (excluded)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        if not 1 <= month <= 12 or not 2000 <= year <= 9998:
            raise PeriodError(f"no such month: {year:04d}-{month:02d}")
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        return cls(start=start, end=end)

    @classmethod
    def parse(cls, label: str) -> Period:
        """'2026-11' -> November 2026. Raises PeriodError saying what is expected."""
        match = _LABEL.match(label or "")
        if match is None:
            raise PeriodError(f"period {label!r} must look like 2026-11 (year-month)")
        return cls.month(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime) -> Period:
        moment = moment.astimezone(UTC)
        return cls.month(moment.year, moment.month)

    @classmethod
    def previous(cls, *, now: datetime) -> Period:
        """The last complete month before `now` (what the run on the 1st bills)."""
        current = cls.containing(now).start
        return cls.month(current.year - (current.month == 1), (current.month - 2) % 12 + 1)

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def ensure_ended(self, *, now: datetime) -> None:
        """Raise PeriodError unless the whole period lies in the past."""
        if now < self.end:
            raise PeriodError(f"period {self.label} has not ended yet (it ends {self.end:%Y-%m-%d %H:%M}Z); "
                              "bill a month once it is over")

    def __str__(self) -> str:
        return self.label
