"""Portal pages: server time per page for a tenant with a year of hourly usage.

    createdb -h 127.0.0.1 -U postgres greentier_bench_portal
    .venv/bin/python bench/portal.py --database-url postgres://postgres@127.0.0.1:5432/greentier_bench_portal

Builds, in an empty PostgreSQL database (migrated first; the pages then run as the
ordinary app role, so row-level security applies as in production): one green-tier
tenant with 8,760 hours x 2 model variants x 2 modes of ledger rows ending at the current
hour (35,040 rows), the zone's hourly grid intensity for the same year (Electricity Maps
GB 2023, life-cycle, replayed), ~150 finished green-tier batch jobs, a price book and an
admin user. Then renders each page in-process with Django's test client (URL routing,
middleware, sessions, the view, the template: everything but the socket) `--runs`
times after one warm-up, twice: with no month invoiced yet (every month a rating
preview: the worst case) and with every complete month invoiced (the usual case).

Last line: JSON with the median and worst milliseconds per page (target: every page
under 300 ms).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT.parent / "shared" / "data" / "grid-intensity" / "electricitymaps-2023" / "GB_2023_hourly.csv"
HOURS = 8760


def setup(database_url: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="greentier-bench-portal-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CARBON_OFFLINE"] = "1"
    os.environ["DATABASE_URL"] = database_url
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ.pop("CELERY_BROKER_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench/portal.py: needs PostgreSQL (--database-url postgres://...)")
    call_command("migrate", verbosity=0, interactive=False)
    call_command("grant_app_role", verbosity=0)
    settings.ALLOWED_HOSTS = ["testserver"]


def act_as_app_role() -> None:
    """From here on the connection runs as the ordinary role: RLS applies to every page."""
    from django.conf import settings
    from django.db import connections

    connections["default"].settings_dict.setdefault("OPTIONS", {})["assume_role"] = settings.DATABASE_APP_ROLE
    connections["default"].close()


def grid_series() -> list[Decimal]:
    with open(GRID, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        lca = next(k for k in reader.fieldnames if "(LCA)" in k)
        return [Decimal(row[lca]) for row in reader]


def build(*, seed: int = 7):
    from django.contrib.auth import get_user_model

    from billing.models import PriceVersion
    from carbon import units
    from carbon.models import GridIntensity
    from inference.models import (
        BatchInput,
        BatchJob,
        ModelArtifact,
        ModelFamily,
        ModelVariant,
        ModelVersion,
        UsageHour,
    )
    from tenants.models import Tenant
    from tenants.scope import tenant_scope
    from tenants.services import membership_set, tenant_create

    if Tenant.objects.filter(slug="bench").exists():
        raise SystemExit("bench/portal.py: the database already has a 'bench' tenant; give it an empty database")
    rng = random.Random(seed)
    now = datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=HOURS)
    tenant = tenant_create(slug="bench", name="Bench Ltd", grid_zone="GB", tier="green", currency="EUR")
    Tenant.objects.filter(id=tenant.id).update(created_at=start - timedelta(days=30))
    tenant.refresh_from_db()
    PriceVersion.objects.create(
        currency="EUR", effective_from=datetime(2020, 1, 1, tzinfo=UTC), base_fee_standard_minor=4900,
        base_fee_green_minor=6900, standard_per_1k_minor=Decimal("42.5"), efficiency_per_1k_minor=Decimal("30"),
        accurate_per_1k_minor=Decimal("60"), batch_per_1k_minor=Decimal("20"), green_premium_percent=Decimal("20"))

    family = ModelFamily.objects.create(name="digits-classifier", accuracy_floor=Decimal("0.97"))
    version = ModelVersion.objects.create(family=family, version=1, dataset_name="sklearn-digits",
                                          dataset_version="1", dataset_sha256="0" * 64, train_rows=1347, eval_rows=450)
    variants = []
    for name, technique, j_per_1k in (("baseline-v1", "baseline", 150), ("int8-v1", "int8-quantised", 62)):
        artifact = ModelArtifact.objects.create(sha256=f"{len(variants):064x}", size_bytes=1, path=f"models/{name}")
        variants.append(ModelVariant.objects.create(
            version=version, name=name, technique=technique, artifact=artifact,
            input_schema={"name": "input", "dtype": "float32", "shape": [None, 64]},
            output_schema={"name": "label", "dtype": "int64"}, accuracy=Decimal("0.98"),
            energy_per_1k_uj=j_per_1k * 1_000_000, energy_method="cpu-model: bench", profile_batch_size=32,
            latency_p50_us=1000, latency_p95_us=2000))
    family.default_variant = variants[0]
    family.save(update_fields=["default_variant"])

    series = grid_series()
    GridIntensity.objects.bulk_create([
        GridIntensity(zone="GB", start=start + timedelta(hours=h), end=start + timedelta(hours=h + 1),
                      intensity_g_per_kwh=series[h % len(series)], kind="lifecycle", source="electricitymaps-2023-replayed")
        for h in range(HOURS)], batch_size=5000)

    rows = []
    for h in range(HOURS):
        hour = start + timedelta(hours=h)
        g = series[h % len(series)]
        for variant in variants:
            for mode in ("standard", "efficiency"):
                predictions = rng.randint(20_000, 60_000)
                energy_uj = variant.energy_per_1k_uj * predictions // 1000
                cpu_us = energy_uj // 5
                rows.append(UsageHour(
                    tenant=tenant, hour=hour, variant=variant, mode=mode, source="online",
                    energy_method="cpu-model: bench", predictions=predictions, requests=predictions // 20,
                    cpu_us=cpu_us, inference_cpu_us=cpu_us // 2, energy_uj=energy_uj,
                    co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=g),
                    embodied_co2e_ug=units.embodied_ug(cpu_us=cpu_us, ug_per_cpu_second=Decimal(149)),
                    intensity_g_per_kwh=g, intensity_source="bench"))
    with tenant_scope(tenant.id):
        UsageHour.objects.bulk_create(rows, batch_size=5000)
        batch_input = BatchInput.objects.create(tenant=tenant, sha256="e" * 64, format="csv", size_bytes=1, rows=50_000,
                                                path="batches/bench.csv")
        jobs = []
        for n in range(150):
            submitted = start + timedelta(days=2.4 * n, hours=9)
            run_at = submitted + timedelta(hours=rng.randint(1, 12))
            energy_uj = 300_000_000
            jobs.append(BatchJob(
                tenant=tenant, input=batch_input, family=family, variant=variants[1], mode="efficiency", tier="green",
                deadline=submitted + timedelta(hours=14), status="succeeded", estimated_seconds=3600,
                planned_start=run_at, planned_end=run_at + timedelta(hours=1), run_now_g_per_kwh=Decimal("250"),
                planned_g_per_kwh=Decimal("150"), plan_provider="history", plan_method="seasonal-naive",
                plan_measurable=True, plan_explanation="bench", last_planned_at=submitted, attempts=1,
                started_at=run_at, finished_at=run_at + timedelta(minutes=50), rows_done=50_000, energy_uj=energy_uj,
                actual_g_per_kwh=Decimal("150"), co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=Decimal("150")),
                run_now_co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=Decimal("250"))))
        BatchJob.objects.bulk_create(jobs)
    user = get_user_model().objects.create_user(username="bench-admin", password="bench-admin-password")
    membership_set(tenant=tenant, user=user, role="admin")
    analyze()
    return tenant, user, len(rows)


def analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them in production: without them a
    freshly bulk-loaded ledger is planned as if it had one row, and queries run 3-4x slower."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def invoice_complete_months(tenant) -> int:
    from billing.periods import Period
    from billing.services import invoice_create_for_period

    now = datetime.now(UTC)
    period, count = Period.previous(now=now), 0
    while period.start >= tenant.created_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0) and count < 13:
        if period.end > tenant.created_at:
            invoice_create_for_period(tenant=tenant, period=period)
            count += 1
        period = Period.previous(now=period.start)
    return count


def time_pages(client, pages: dict[str, str], runs: int) -> dict[str, dict]:
    from django.db import connection

    out = {}
    for name, url in pages.items():
        response = client.get(url)  # warm-up (and a check)
        if response.status_code != 200:
            raise SystemExit(f"bench/portal.py: {url} answered {response.status_code}")
        queries = []
        with connection.execute_wrapper(lambda execute, sql, params, many, context: queries.append(sql) or
                                        execute(sql, params, many, context)):
            client.get(url)
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
        out[name] = {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1),
                     "queries": len(queries)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="an empty PostgreSQL database")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    setup(args.database_url)
    started = time.perf_counter()
    tenant, user, rows = build()
    print(f"built {rows} ledger rows, {HOURS} intensity hours, 150 batch jobs in {time.perf_counter() - started:.1f} s")
    act_as_app_role()

    from django.test import Client

    client = Client()
    client.force_login(user)
    now = datetime.now(UTC)
    base = f"/portal/t/{tenant.slug}/"
    pages = {
        "dashboard month": base, "dashboard quarter": f"{base}?p={now.year}-Q{(now.month - 1) // 3 + 1}",
        "dashboard year": f"{base}?p={now.year}",
        "dashboard 366 days": f"{base}?from={(now - timedelta(days=365)).date()}&to={now.date()}",
        "tier": f"{base}tier/", "api keys": f"{base}keys/", "batch jobs": f"{base}batches/",
        "reports & invoices": f"{base}reports/",
    }
    results = {"uninvoiced": time_pages(client, pages, args.runs)}
    invoiced = invoice_complete_months(tenant)
    analyze()
    results[f"{invoiced} months invoiced"] = time_pages(client, pages, args.runs)
    for scenario, figures in results.items():
        print(f"\n{scenario}:")
        print(f"  {'page':<22}{'median ms':>10}{'max ms':>9}{'queries':>9}")
        for name, f in figures.items():
            print(f"  {name:<22}{f['median_ms']:>10}{f['max_ms']:>9}{f['queries']:>9}")
    worst = max(f["max_ms"] for figures in results.values() for f in figures.values())
    print(json.dumps({"ledger_rows": rows, "runs": args.runs, "results": results, "worst_ms": worst,
                      "target_ms": 300}))


if __name__ == "__main__":
    main()
