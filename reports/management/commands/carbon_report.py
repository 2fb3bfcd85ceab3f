import shutil
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from reports.models import ReportKind
from reports.pdf import PdfError
from reports.services import (
    ReportError,
    report_file_path,
    report_generate,
    report_inputs,
    report_period_resolve,
    report_verify,
)
from reports.sla import SlaError
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Generate the annual carbon report (PDF) of a tenant, or of every tenant, and store it under "
        "MEDIA_ROOT/reports/. Same inputs, same file: re-running changes nothing. A year not over yet is covered up "
        "to the last complete month. --verify checks a report PDF against the ledger as it is now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="the tenant (or use --all-tenants)")
        parser.add_argument("--all-tenants", action="store_true", help="every tenant created before the year ended")
        parser.add_argument("--year", required=True, help="calendar year, e.g. 2026")
        parser.add_argument("--output", metavar="PATH", help="also copy the PDF here (a directory with --all-tenants)")
        parser.add_argument("--fingerprint-only", action="store_true",
                            help="print the inputs fingerprint of the tenant's report now; store nothing")
        parser.add_argument("--verify", metavar="PDF", help="check this report PDF: recompute its inputs fingerprint")

    def handle(self, *args, tenant, all_tenants, year, output, fingerprint_only, verify, **options):
        if bool(tenant) == bool(all_tenants):
            raise CommandError("give either --tenant SLUG or --all-tenants")
        if not (year.isdigit() and len(year) == 4):
            raise CommandError(f"--year must be a calendar year like 2026, not {year!r}")
        if all_tenants and (verify or fingerprint_only):
            raise CommandError("--verify and --fingerprint-only work on one --tenant")
        try:
            if all_tenants:
                self._all(year, output)
            else:
                found = Tenant.objects.filter(slug=tenant).first()
                if found is None:
                    raise CommandError(f"no tenant with slug {tenant!r}")
                if verify:
                    self._verify(found, Path(verify))
                elif fingerprint_only:
                    self._fingerprint(found, year)
                else:
                    self._one(found, year, Path(output) if output else None)
        except (ReportError, SlaError, PdfError) as exc:
            raise CommandError(str(exc)) from None

    def _one(self, tenant, year, output):
        report, created = report_generate(tenant=tenant, kind=ReportKind.CARBON_REPORT, period=year, requested_by="cli")
        path = report_file_path(report)
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, output)
            path = output
        self.stdout.write(f"{'created' if created else 'unchanged'} report {report.id}: {tenant.slug} {report.period} "
                          f"({report.period_start:%Y-%m-%d} to {report.period_end:%Y-%m-%d}), {report.pages} pages, "
                          f"fingerprint {report.fingerprint} -> {path}")

    def _all(self, year, output):
        from billing.periods import Period

        tenants = list(Tenant.objects.filter(created_at__lt=Period.month(int(year), 12).end).order_by("slug"))
        directory = Path(output) if output else None
        if directory:
            directory.mkdir(parents=True, exist_ok=True)
        created = failed = 0
        for tenant in tqdm(tenants, desc=f"carbon reports {year}", unit="tenant", file=sys.stderr, leave=False):
            try:
                report, new = report_generate(tenant=tenant, kind=ReportKind.CARBON_REPORT, period=year,
                                              requested_by="cli")
            except (SlaError, PdfError) as exc:
                failed += 1
                self.stderr.write(f"FAILED {tenant.slug}: {exc}")
                continue
            created += new
            if directory:
                shutil.copyfile(report_file_path(report), directory / f"carbon-report-{year}-{tenant.slug}.pdf")
        self.stdout.write(f"carbon reports {year}: {len(tenants)} tenants, {created} new, "
                          f"{len(tenants) - created - failed} unchanged, {failed} failed")
        if failed:
            raise CommandError(f"{failed} of {len(tenants)} reports failed; fix the cause and run again")

    def _fingerprint(self, tenant, year):
        from django.utils import timezone

        from reports.documents import inputs_fingerprint

        covered = report_period_resolve(ReportKind.CARBON_REPORT, year, now=timezone.now())
        self.stdout.write(inputs_fingerprint(report_inputs(tenant=tenant, kind=ReportKind.CARBON_REPORT,
                                                           period=covered)))

    def _verify(self, tenant, path):
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        result = report_verify(tenant=tenant, content=content)
        report = result.report
        if not result.matches:
            raise CommandError(f"report {report.id} ({report.kind} {report.period}) was made from inputs "
                               f"{report.fingerprint}; the ledger now gives {result.current_fingerprint}: its data "
                               "changed since")
        self.stdout.write(f"OK: report {report.id} ({report.kind} {report.period}) matches the ledger, fingerprint "
                          f"{report.fingerprint}")
