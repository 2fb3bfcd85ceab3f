"""Rating benchmark: a month of hourly usage for 10,000 tenants through the rating core.

    .venv/bin/python bench/rating.py [--tenants 10000] [--db-tenants 0]

Each tenant has 720 hours x 3 modes x 2 variants = 4,320 ledger rows (the second variant
of standard mode is batch usage), rated by billing.rating.rate_lines, the pure core of
invoice_lines_for_period: no database, no Stripe. Every tenant's month is split by a
price change on the 16th (two price versions); one tenant in ten also switches to the
green tier on the 11th at noon. Rows are generated per tenant and dropped after rating,
as the monthly run reads one tenant at a time.

--db-tenants N also times the database-backed path, invoice_lines_for_period (ledger
query through inference.selectors, tier history, price book), on N tenants written to
DATABASE_URL (a migrated PostgreSQL scratch database; the bench deletes what it wrote).

Last line: JSON with tenants, seconds, tenants_per_second, rows, peak_rss_mb and, with
--db-tenants, db_tenants, db_seconds, db_tenants_per_second.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from billing.periods import Period  # noqa: E402
from billing.rating import Prices, TierSpan, rate_lines  # noqa: E402

NOV = Period.parse("2026-11")
MODES = ("standard", "efficiency", "accurate")
PRICE_CHANGE = datetime(2026, 11, 16, tzinfo=UTC)
TIER_CHANGE = datetime(2026, 11, 11, 12, tzinfo=UTC)


def price_versions(currency: str = "EUR") -> list[Prices]:
    def version(effective_from, version_id, std):
        return Prices(effective_from=effective_from, currency=currency,
                      base_fee_minor={"standard": 4900, "green": 9900},
                      per_1k_minor={"standard": Decimal(std), "efficiency": Decimal("30"), "accurate": Decimal("80.5")},
                      batch_per_1k_minor=Decimal("20"), green_premium_percent=Decimal("20"), version_id=version_id)
    return [version(datetime(2026, 1, 1, tzinfo=UTC), 1, "50"), version(PRICE_CHANGE, 2, "55")]


def template() -> list[tuple]:
    """One tenant-month of ledger rows: (hour, mode, source, predictions, energy_uj, co2e_ug)."""
    rows = []
    for h in range(720):
        hour = NOV.start + timedelta(hours=h)
        daily = 1 + (h % 24) / 8  # busier in the day
        for m, mode in enumerate(MODES):
            for v in (0, 1):
                predictions = int((200 + 37 * m + 11 * v) * daily)
                source = "batch" if (mode == "standard" and v == 1) else "online"
                rows.append((hour, mode, source, predictions, predictions * 950, predictions * 41))
    return rows


def tenant_rows(base: list[tuple], n: int) -> list[tuple]:
    """Plain tuples in UsageRow's field order (rate_lines unpacks rows; tuples build faster)."""
    k = 1 + n % 7
    return [(h, m, s, p * k, e * k, c * k) for h, m, s, p, e, c in base]


def tier_spans(n: int) -> list[TierSpan]:
    if n % 10 == 0:
        return [TierSpan(NOV.start, TIER_CHANGE, "standard"), TierSpan(TIER_CHANGE, NOV.end, "green")]
    return [TierSpan(NOV.start, NOV.end, "standard")]


def bench_core(tenants: int) -> dict:
    prices, base = price_versions(), template()
    total_minor = rows = lines = 0
    started = time.perf_counter()
    for n in range(tenants):
        usage = tenant_rows(base, n)
        rated = rate_lines(period=NOV, currency="EUR", prices=prices, tier_spans=tier_spans(n), usage=usage)
        rows += len(usage)
        lines += len(rated)
        total_minor += sum(line.amount_minor for line in rated)
        if n and n % 1000 == 0:
            print(f"  {n} tenants rated, {time.perf_counter() - started:.1f} s", file=sys.stderr)
    seconds = time.perf_counter() - started
    return {"tenants": tenants, "seconds": round(seconds, 2), "tenants_per_second": round(tenants / seconds, 1),
            "rows": rows, "lines": lines, "total_minor_checksum": total_minor}


def bench_db(tenants: int) -> dict:
    """Write `tenants` tenants' months to the database, time invoice_lines_for_period, clean up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("--db-tenants needs DATABASE_URL pointing at a migrated PostgreSQL scratch database")
    import django

    django.setup()
    from billing.models import PriceVersion
    from billing.rating import invoice_lines_for_period
    from inference.models import (
        ModelArtifact,
        ModelFamily,
        ModelVariant,
        ModelVersion,
        UsageHour,
    )
    from tenants.models import Tenant
    from tenants.scope import all_tenants_scope, tenant_scope
    from tenants.services import tenant_change_tier, tenant_create

    tag = f"bench{int(time.time())}"
    family = ModelFamily.objects.create(name=f"{tag}-family", accuracy_floor=Decimal("0.9"))
    version = ModelVersion.objects.create(family=family, version=1, dataset_name="bench", dataset_version="1",
                                          dataset_sha256="0" * 64, train_rows=1, eval_rows=1)
    variants = []
    for v in (0, 1):
        artifact = ModelArtifact.objects.create(sha256=f"{tag}{v}".ljust(64, "0"), size_bytes=1, path=f"bench/{v}")
        variants.append(ModelVariant.objects.create(
            version=version, name=f"v{v}", technique="baseline", artifact=artifact, input_schema={}, output_schema={},
            accuracy=Decimal("0.95"), energy_per_1k_uj=1, energy_method="bench", profile_batch_size=1,
            latency_p50_us=1, latency_p95_us=1))
    versions = [PriceVersion.objects.create(
        currency="EUR", effective_from=p.effective_from + timedelta(microseconds=7), note=tag,  # unlikely to clash
        base_fee_standard_minor=4900, base_fee_green_minor=9900, standard_per_1k_minor=p.per_1k_minor["standard"],
        efficiency_per_1k_minor=30, accurate_per_1k_minor=Decimal("80.5"), batch_per_1k_minor=20)
        for p in price_versions()]
    base = template()
    created = []
    try:
        write_started = time.perf_counter()
        for n in range(tenants):
            tenant = tenant_create(slug=f"{tag}-{n}")
            Tenant.objects.filter(id=tenant.id).update(created_at=datetime(2026, 1, 1, tzinfo=UTC))
            tenant.refresh_from_db()
            created.append(tenant)
            if n % 10 == 0:
                tenant_change_tier(tenant=tenant, tier="green", changed_by="bench", at=TIER_CHANGE)
            with tenant_scope(tenant.id):
                UsageHour.objects.bulk_create([
                    UsageHour(tenant=tenant, hour=h, variant=variants[i % 2], mode=m, source=s,
                              energy_method="bench", predictions=p, requests=p, energy_uj=e, co2e_ug=c,
                              intensity_g_per_kwh=Decimal("200"), intensity_source="bench")
                    for i, (h, m, s, p, e, c) in enumerate(tenant_rows(base, n))], batch_size=5000)
        write_seconds = time.perf_counter() - write_started
        started = time.perf_counter()
        for tenant in created:
            invoice_lines_for_period(tenant=tenant, period=NOV)
        seconds = time.perf_counter() - started
    finally:
        with all_tenants_scope():
            Tenant.objects.filter(id__in=[t.id for t in created]).delete()
            PriceVersion.objects.filter(id__in=[v.id for v in versions]).delete()
            family.delete()
            ModelArtifact.objects.filter(path__startswith="bench/", sha256__startswith=tag).delete()
    return {"db_tenants": tenants, "db_seconds": round(seconds, 2),
            "db_tenants_per_second": round(tenants / seconds, 1),
            "db_write_seconds": round(write_seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--db-tenants", type=int, default=0)
    args = parser.parse_args()
    result = bench_core(args.tenants)
    print(f"core: {result['tenants']} tenants, {result['rows']:,} rows in {result['seconds']} s "
          f"= {result['tenants_per_second']} tenants/s", file=sys.stderr)
    if args.db_tenants:
        result |= bench_db(args.db_tenants)
        print(f"database path: {result['db_tenants']} tenants in {result['db_seconds']} s "
              f"= {result['db_tenants_per_second']} tenants/s", file=sys.stderr)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
