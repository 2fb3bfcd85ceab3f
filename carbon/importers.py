"""Parse grid-intensity files into validated rows. No database access.

Two formats (see ../shared/data/grid-intensity/README.md and docs/carbon.md):

electricitymaps  Electricity Maps hourly export. Header
                 `Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),
                 Carbon Intensity gCO₂eq/kWh (LCA),...,Data Estimated,...`. UTC; each row is
                 the hour starting at its time. Both kinds are in the file.
timeseries       `Time,Carbon Intensity`: naive `YYYY-MM-DD HH:MM:SS` in a given time zone
                 (UTC by default), any regular or mixed step. Each row lasts until the next
                 one, but never longer than the file's most common step (so a gap stays a gap);
                 the last row lasts as long as the step before it.
                 One kind (life-cycle for the Let's-Wait-Awhile series).

A file is read and checked completely before anything is written: the first bad row
raises GridDataFileError naming the file and line.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carbon.exceptions import GridDataFileError
from carbon.models import MAX_POINT_DURATION
from carbon.types import DIRECT, KINDS, LIFECYCLE, quantize_g_per_kwh

ELECTRICITYMAPS = "electricitymaps"
TIMESERIES = "timeseries"
FORMATS = (ELECTRICITYMAPS, TIMESERIES)
BOTH = "both"

# Largest value accepted as gCO2e/kWh; the dirtiest grids are near 1,000 (coal alone ~1,000).
MAX_G_PER_KWH = Decimal(5000)
EM_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class ImportRow:
    start: datetime  # aware UTC
    end: datetime
    g_per_kwh: Decimal
    kind: str
    is_estimated: bool
    line: int  # line number in the file, for messages


def _normalise(header: str) -> str:
    return " ".join(header.replace("₂", "2").lower().split())


def _open(path: Path):
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise GridDataFileError(str(path), f"cannot open: {exc.strerror or exc}") from None


def format_detect(*, path: Path) -> str:
    """Which format a file is in, from its header line."""
    with _open(path) as f:
        try:
            header = next(csv.reader(f), None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise GridDataFileError(str(path), f"not a readable CSV file ({exc})", line=1) from None
    if not header:
        raise GridDataFileError(str(path), "the file is empty", line=1)
    names = {_normalise(h) for h in header}
    if "datetime (utc)" in names and any("carbon intensity" in n for n in names):
        return ELECTRICITYMAPS
    if names == {"time", "carbon intensity"}:
        return TIMESERIES
    raise GridDataFileError(str(path), f"unknown header {','.join(header)!r}; expected an Electricity Maps export "
                                       "or 'Time,Carbon Intensity'", line=1)


def _intensity(text: str, *, path: Path, line: int, column: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise GridDataFileError(str(path), f"{column} {text!r} is not a number", line=line) from None
    if not value.is_finite():
        raise GridDataFileError(str(path), f"{column} {text!r} is not a finite number", line=line)
    if value < 0 or value > MAX_G_PER_KWH:
        raise GridDataFileError(str(path), f"{column} {text} is outside 0..{MAX_G_PER_KWH} gCO2e/kWh", line=line)
    return quantize_g_per_kwh(value)


def _rows(path: Path, on_line: Callable[[], None] | None):
    """(line number, header, row) for each data row."""
    with _open(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if not header:
                raise GridDataFileError(str(path), "the file is empty", line=1)
            for row in reader:
                if on_line:
                    on_line()
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank lines (often one at the end) carry no data
                yield reader.line_num, header, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise GridDataFileError(str(path), f"not a readable CSV file ({exc})", line=reader.line_num) from None


def parse_electricitymaps(*, path: Path, zone: str, kinds: tuple[str, ...],
                          on_line: Callable[[], None] | None = None) -> list[ImportRow]:
    """Rows of an Electricity Maps hourly export for the given kinds (direct and/or lifecycle)."""
    columns = {
        "time": "datetime (utc)", "zone": "zone id", DIRECT: "carbon intensity gco2eq/kwh (direct)",
        LIFECYCLE: "carbon intensity gco2eq/kwh (lca)", "estimated": "data estimated",
    }
    out: list[ImportRow] = []
    index: dict[str, int] | None = None
    seen: dict[datetime, int] = {}
    for line, header, row in _rows(path, on_line):
        if index is None:
            names = [_normalise(h) for h in header]
            missing = [c for key, c in columns.items() if c not in names and (key not in KINDS or key in kinds)]
            if missing:
                raise GridDataFileError(str(path), f"missing column(s): {', '.join(missing)}", line=1)
            index = {key: names.index(c) for key, c in columns.items() if c in names}
        if len(row) != len(header):
            raise GridDataFileError(str(path), f"expected {len(header)} fields, found {len(row)}", line=line)
        file_zone = row[index["zone"]].strip()
        if file_zone != zone:
            raise GridDataFileError(str(path), f"Zone Id is {file_zone!r}, but --zone is {zone!r}", line=line)
        try:
            start = datetime.strptime(row[index["time"]].strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        except ValueError:
            raise GridDataFileError(str(path), f"time {row[index['time']]!r} is not YYYY-MM-DD HH:MM:SS",
                                    line=line) from None
        if start in seen:
            raise GridDataFileError(str(path), f"{start:%Y-%m-%d %H:%M} UTC repeats line {seen[start]}", line=line)
        seen[start] = line
        estimated_text = row[index["estimated"]].strip().lower() if "estimated" in index else "false"
        if estimated_text not in ("true", "false", ""):
            raise GridDataFileError(str(path), f"Data Estimated {estimated_text!r} is not true or false", line=line)
        for kind in kinds:
            value = _intensity(row[index[kind]], path=path, line=line, column=f"{kind} intensity")
            out.append(ImportRow(start=start, end=start + EM_HOUR, g_per_kwh=value, kind=kind,
                                 is_estimated=estimated_text == "true", line=line))
    if index is None:
        raise GridDataFileError(str(path), "the file has a header but no rows")
    return out


def _localise(naive: datetime, tz: ZoneInfo, *, path: Path, line: int) -> datetime:
    """Naive wall-clock time in `tz` -> aware UTC. A time skipped when clocks go forward is
    an error; a time repeated when clocks go back is read as its first occurrence."""
    aware = naive.replace(tzinfo=tz)
    back = aware.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None)
    if back != naive:
        raise GridDataFileError(str(path), f"{naive} does not exist in {tz.key} (clocks go forward then); "
                                           "check --timezone", line=line)
    return aware.astimezone(timezone.utc)


def time_zone_get(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise GridDataFileError("--timezone", f"unknown time zone {name!r}; use an IANA name like UTC or "
                                              "Europe/London") from None


def parse_timeseries(*, path: Path, kind: str, tz: ZoneInfo,
                     on_line: Callable[[], None] | None = None) -> list[ImportRow]:
    """Rows of a `Time,Carbon Intensity` file with naive timestamps in `tz`."""
    stamps: list[tuple[datetime, Decimal, int]] = []
    for line, header, row in _rows(path, on_line):
        if not stamps and [_normalise(h) for h in header] != ["time", "carbon intensity"]:
            raise GridDataFileError(str(path), f"expected header 'Time,Carbon Intensity', found {','.join(header)!r}",
                                    line=1)
        if len(row) != 2:
            raise GridDataFileError(str(path), f"expected 2 fields, found {len(row)}", line=line)
        text = row[0].strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise GridDataFileError(str(path), f"time {row[0]!r} is not YYYY-MM-DD HH:MM:SS", line=line) from None
        start = (parsed.astimezone(timezone.utc) if parsed.utcoffset() is not None
                 else _localise(parsed, tz, path=path, line=line))
        value = _intensity(row[1], path=path, line=line, column="Carbon Intensity")
        if stamps and start <= stamps[-1][0]:
            raise GridDataFileError(str(path), f"{text} is not after the previous row (line {stamps[-1][2]}); "
                                               "rows must be in time order without repeats", line=line)
        stamps.append((start, value, line))
    if len(stamps) < 2:
        raise GridDataFileError(str(path), "need at least two rows to tell the time step")
    steps = Counter(b[0] - a[0] for a, b in zip(stamps, stamps[1:]))
    step = max(steps.items(), key=lambda item: (item[1], -item[0]))[0]  # most common; shorter wins a tie
    if step > MAX_POINT_DURATION:
        raise GridDataFileError(str(path), f"the most common step is {step}; at most {MAX_POINT_DURATION} is supported")
    out = []
    for i, (start, value, line) in enumerate(stamps):
        # The last row keeps the step before it (a 15-minute tail stays 15 minutes).
        following = stamps[i + 1][0] if i + 1 < len(stamps) else start + (start - stamps[i - 1][0])
        end = min(following, start + step)
        out.append(ImportRow(start=start, end=end, g_per_kwh=value, kind=kind, is_estimated=False, line=line))
    return out


def rows_count_lines(path: Path) -> int:
    """Data lines in a file (for the progress bar), without parsing."""
    with _open(path) as f:
        return max(0, sum(1 for _ in f) - 1)


def kinds_for(*, file_format: str, kind: str | None) -> tuple[str, ...]:
    """The kinds to import: Electricity Maps exports default to both, time series to life-cycle."""
    if file_format == ELECTRICITYMAPS:
        if kind in (None, BOTH):
            return (DIRECT, LIFECYCLE)
        return (kind,)
    if kind == BOTH:
        raise GridDataFileError("--kind", "a Time,Carbon Intensity series holds one kind; choose direct or lifecycle")
    return (kind or LIFECYCLE,)
