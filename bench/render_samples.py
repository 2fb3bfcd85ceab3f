"""Sample PDFs of every report, from demo-like data, and PNGs of their pages to look at.

    .venv/bin/python bench/render_samples.py [--year 2025] [--out docs/samples] [--png-dir var/samples]

Creates the demo world of bench/reports.py (temporary SQLite database), then renders:

    carbon-report-sample.pdf        annual carbon report of the main tenant
    sla-statement-sample.pdf        its SLA compliance statement for the year
    finance-sla-report-sample.pdf   monthly SLA report across all tenants (December), + .csv
    revenue-summary-sample.pdf      revenue/energy summary (December), + .csv
    invoice-sample.pdf              the main tenant's invoice for a month with an SLA credit

and every page of each as PNG (pdftoppm, 80 dpi) into --png-dir for review. The PDFs
are deterministic: the same code and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reports import demo_data_create, setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "samples")
    parser.add_argument("--png-dir", type=Path, default=ROOT / "var" / "samples")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args()
    setup()
    from django.db.models import F

    from billing.models import Invoice, InvoiceLine
    from billing.periods import Period
    from reports.models import ReportKind
    from reports.services import finance_reports_generate, invoice_pdf, report_file_path, report_generate
    from tenants.scope import tenant_scope

    demo = demo_data_create(year=args.year)
    now = datetime(args.year + 1, 1, 15, tzinfo=UTC)
    args.out.mkdir(parents=True, exist_ok=True)
    outputs = {}
    carbon, _ = report_generate(tenant=demo.tenant, kind=ReportKind.CARBON_REPORT, period=str(args.year), now=now)
    outputs["carbon-report-sample.pdf"] = report_file_path(carbon)
    statement, _ = report_generate(tenant=demo.tenant, kind=ReportKind.SLA_STATEMENT, period=str(args.year), now=now)
    outputs["sla-statement-sample.pdf"] = report_file_path(statement)
    finance_dir = args.out / "finance-tmp"
    run = finance_reports_generate(period=Period.parse(demo.finance_month), output_dir=finance_dir, now=now)
    for line in run.lines():
        print(line)
    outputs["finance-sla-report-sample.pdf"] = finance_dir / f"finance-sla-{demo.finance_month}.pdf"
    outputs["finance-sla-report-sample.csv"] = finance_dir / f"finance-sla-{demo.finance_month}.csv"
    outputs["revenue-summary-sample.pdf"] = finance_dir / f"revenue-summary-{demo.finance_month}.pdf"
    outputs["revenue-summary-sample.csv"] = finance_dir / f"revenue-summary-{demo.finance_month}.csv"
    for name, source in outputs.items():
        shutil.copyfile(source, args.out / name)
    shutil.rmtree(finance_dir)
    with tenant_scope(demo.tenant.id):
        # Invoices record when they were made (the clock); date the demo's at their month's
        # end so that the sample, like the others, is the same on every run.
        Invoice.objects.update(created_at=F("period_end"))
        credited = InvoiceLine.objects.filter(kind="sla_credit").order_by("-invoice__period_start").first()
        invoice_id = credited.invoice_id if credited else Invoice.objects.order_by("-period_start").first().id
    (args.out / "invoice-sample.pdf").write_bytes(invoice_pdf(tenant=demo.tenant, invoice_id=invoice_id).pdf.content)
    outputs["invoice-sample.pdf"] = args.out / "invoice-sample.pdf"

    args.png_dir.mkdir(parents=True, exist_ok=True)
    for name in outputs:
        if not name.endswith(".pdf"):
            continue
        stem = args.png_dir / name.removesuffix(".pdf")
        subprocess.run(["pdftoppm", "-png", "-r", str(args.dpi), str(args.out / name), str(stem)], check=True)
        pages = sorted(args.png_dir.glob(f"{stem.name}-*.png"))
        print(f"{args.out / name}: {len(pages)} page(s) -> {', '.join(p.name for p in pages)}")


if __name__ == "__main__":
    main()
