import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing.periods import Period, PeriodError
from reports.services import ReportError, finance_reports_generate


class Command(BaseCommand):
    help = (
        "Evaluate every tenant's energy SLA for a finished month (stored once; re-running changes nothing) and write "
        "the finance reports: finance-sla-<period>.csv/.pdf and revenue-summary-<period>.csv/.pdf "
        "(default directory MEDIA_ROOT/reports/finance/<period>/). --statements also stores each tenant's SLA "
        "statement for the month."
    )

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="the month, e.g. 2026-11 (UTC)")
        parser.add_argument("--output-dir", metavar="DIR", default=None, help="where to write the four files")
        parser.add_argument("--statements", action="store_true", help="also store each tenant's SLA statement")

    def handle(self, *args, period, output_dir, statements, **options):
        try:
            month = Period.parse(period)
        except PeriodError as exc:
            raise CommandError(str(exc)) from None
        progress = tqdm(desc=f"SLA {month.label}", unit="tenant", file=sys.stderr, leave=False)
        try:
            run = finance_reports_generate(period=month, output_dir=Path(output_dir) if output_dir else None,
                                           statements=statements, progress=progress)
        except ReportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            progress.close()
        for line in run.lines():
            self.stdout.write(line)
        if run.failed:
            raise CommandError(f"{len(run.failed)} tenants could not be evaluated; fix the cause and run the same "
                               "command again")
