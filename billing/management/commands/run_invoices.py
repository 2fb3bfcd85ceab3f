import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing.periods import Period, PeriodError
from billing.services import BillingError, invoice_run_for_period


class Command(BaseCommand):
    help = (
        "Bill every tenant (or one) for a finished month: rate usage into one invoice per tenant, push it to "
        "Stripe and collect it. Safe to run again at any time: billed tenants are skipped and half-done "
        "invoices are finished (a killed run resumes where it stopped)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="the month to bill, e.g. 2026-11 (UTC)")
        parser.add_argument("--tenant", metavar="SLUG", default=None, help="bill only this tenant")
        parser.add_argument("--dry-run", action="store_true", help="rate and print totals; write nothing, "
                                                                   "call no Stripe API")

    def handle(self, *args, period, tenant, dry_run, **options):
        try:
            month = Period.parse(period)
        except PeriodError as exc:
            raise CommandError(str(exc)) from None
        progress = tqdm(desc=f"billing {month.label}", unit="tenant", file=sys.stderr, leave=False)
        try:
            summary = invoice_run_for_period(period=month, tenant_slug=tenant, dry_run=dry_run, progress=progress)
        except (PeriodError, BillingError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            progress.close()
        for line in summary.lines():
            self.stdout.write(line)
        if summary.failed:
            raise CommandError(f"{len(summary.failed)} of {summary.tenants} tenants failed; fix the cause and run the "
                               "same command again to resume")
