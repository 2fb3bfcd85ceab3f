"""python manage.py import_grid_intensity FILE --zone Z [--format ...] [--kind ...] [--timezone ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from carbon import importers
from carbon.exceptions import CarbonError
from carbon.services import grid_intensity_import
from carbon.types import KINDS
from carbon.zones import zone_validate

DEFAULT_SOURCES = {importers.ELECTRICITYMAPS: "electricitymaps-export"}


class Command(BaseCommand):
    help = (
        "Import grid carbon intensity (gCO2e/kWh) from a file into the stored history. "
        "Formats: an Electricity Maps hourly export (UTC; direct and life-cycle columns) or a "
        "'Time,Carbon Intensity' series (naive times in --timezone). Re-importing a file updates "
        "rows instead of duplicating them; a malformed row aborts the import before anything is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--zone", required=True, help="grid zone, e.g. GB, DE, FR, US-CAL-CISO")
        parser.add_argument("--format", dest="file_format", default="auto", choices=["auto", *importers.FORMATS],
                            help="file format (default: detect from the header)")
        parser.add_argument("--kind", default=None, choices=[*KINDS, importers.BOTH],
                            help="Electricity Maps exports: direct, lifecycle or both (default both); "
                                 "time series: what the values are (default lifecycle)")
        parser.add_argument("--timezone", default="UTC",
                            help="time zone of a time series' naive timestamps (default UTC)")
        parser.add_argument("--source", default=None,
                            help="name recorded with every row (default: electricitymaps-export, or "
                                 "timeseries:<file name> for a time series)")
        parser.add_argument("--no-progress", action="store_true", help="do not show progress bars")

    def handle(self, *args, file: Path, zone: str, file_format: str, kind: str | None, timezone: str,
               source: str | None, no_progress: bool, **options):
        try:
            zone_validate(zone)
            if not file.is_file():
                raise CommandError(f"{file}: no such file")
            if file_format == "auto":
                file_format = importers.format_detect(path=file)
            kinds = importers.kinds_for(file_format=file_format, kind=kind)
            source = source or DEFAULT_SOURCES.get(file_format) or f"timeseries:{file.name}"
            # tqdm writes \r updates, so it needs the raw stream, not Django's line-ending wrapper.
            stream = getattr(self.stderr, "_out", sys.stderr)
            with tqdm(total=importers.rows_count_lines(file), desc=f"read {file.name}", unit=" rows",
                      file=stream, disable=no_progress, leave=False) as bar:
                if file_format == importers.ELECTRICITYMAPS:
                    rows = importers.parse_electricitymaps(path=file, zone=zone, kinds=kinds,
                                                           on_line=lambda: bar.update(1))
                else:
                    rows = importers.parse_timeseries(path=file, kind=kinds[0],
                                                      tz=importers.time_zone_get(timezone),
                                                      on_line=lambda: bar.update(1))
            with tqdm(total=len(rows), desc=f"store {zone}", unit=" rows", file=stream,
                      disable=no_progress, leave=False) as bar:
                result = grid_intensity_import(zone=zone, source=source, rows=rows, on_progress=bar.update)
        except (CarbonError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        first, last = rows[0].start, rows[-1].end
        self.stdout.write(
            f"{file.name}: {result.rows} rows for {zone} ({file_format}, {'+'.join(kinds)}, source {source}, "
            f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC): {result.created} new, {result.updated} updated"
        )
