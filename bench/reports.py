"""Annual carbon report: seconds per report for a tenant with a year of hourly usage.

    .venv/bin/python bench/reports.py [--year 2025] [--runs 5] [--database-url URL]

Builds demo-like data in a fresh temporary SQLite database (or an empty PostgreSQL
database given by --database-url, migrated first): a green-tier tenant with every hour
of the year in two modes of one family plus a second family, a hardware change in
October, ~150 green-tier batch jobs planned on a real grid-intensity series (Electricity
Maps GB 2023 hourly, life-cycle, replayed onto the report year), SLA terms with a
mid-year change, prices and monthly invoices (so SLA credits are applied); and four
smaller tenants for the finance reports. Then times the whole annual report (ledger
reads, charts, WeasyPrint) `--runs` times after one warm-up run.

Last line: JSON with seconds_per_report (median wall time of the timed runs; target < 2 s),
best_seconds, cpu_seconds_per_report (median process CPU time: less sensitive to other
load on the machine) and inputs_seconds (the ledger reads alone).
`demo_data_create` is shared with bench/render_samples.py.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT.parent / "shared" / "data" / "grid-intensity" / "electricitymaps-2023"
GRID_FILES = {"GB": "GB_2023_hourly.csv", "DE": "DE-LU_2023_hourly.csv", "US-CAL-CISO": "US-CAL-CISO_2023_hourly.csv"}
ENERGY_METHOD = "cpu-model: 4.375 W/core (default: AMD EPYC 7763 TDP 280 W / 64 cores), PUE 1.2"
ENERGY_METHOD_RAPL = "rapl: 3.912 W/core (RAPL /sys/class/powercap/intel-rapl:0), PUE 1.2"
WATTS = {ENERGY_METHOD: Decimal("4.375"), ENERGY_METHOD_RAPL: Decimal("3.912")}
PUE = Decimal("1.2")
EMBODIED_UG_PER_CPU_SECOND = Decimal(149)


def setup(*, database_url: str | None = None) -> Path:
    """Django on a fresh database and media directory; returns the temporary directory."""
    tmp = Path(tempfile.mkdtemp(prefix="greentier-bench-reports-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CARBON_OFFLINE"] = "1"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ.pop("CELERY_BROKER_URL", None)  # eager: nothing here queues tasks anyway
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return tmp


def _grid_series(zone: str) -> list[tuple[Decimal, Decimal]]:
    """8,760 hourly (direct, life-cycle) intensities of 2023, gCO2e/kWh."""
    with open(GRID / GRID_FILES[zone], newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        direct = next(k for k in reader.fieldnames if "(direct)" in k)
        lca = next(k for k in reader.fieldnames if "(LCA)" in k)
        return [(Decimal(row[direct]), Decimal(row[lca])) for row in reader]


def _intensity(series, at: datetime) -> Decimal:
    """Life-cycle intensity of the same hour of the year in 2023 (the replayed series)."""
    index = int((at - datetime(at.year, 1, 1, tzinfo=UTC)).total_seconds() // 3600) % len(series)
    return series[index][1]


@dataclass
class Demo:
    tenant: object  # the main tenant
    others: list
    year: int
    finance_month: str


def _registry():
    from inference.models import ModelArtifact, ModelFamily, ModelVariant, ModelVersion

    def family(name, floor, description):
        fam, _ = ModelFamily.objects.get_or_create(name=name, defaults={"accuracy_floor": Decimal(floor),
                                                                          "description": description})
        version, _ = ModelVersion.objects.get_or_create(family=fam, version=1, defaults=dict(
            dataset_name="sklearn-digits" if name == "digits-classifier" else "ticket-intents",
            dataset_version="1.9.1" if name == "digits-classifier" else "2025-03",
            dataset_sha256=("8f2c" if name == "digits-classifier" else "41d7") + "0b1e" * 15,
            train_rows=1347, eval_rows=450))
        return fam, version

    def variant(version, name, technique, accuracy, j_per_1k, p95_us, training_kwh, training_g):
        artifact, _ = ModelArtifact.objects.get_or_create(
            sha256=hashlib.sha256(f"{version.family.name}/{name}".encode()).hexdigest(),
            defaults={"size_bytes": 120_000, "path": f"models/demo/{name}.onnx"})
        return ModelVariant.objects.create(
            version=version, name=name, technique=technique, artifact=artifact,
            input_schema={"name": "input", "dtype": "float32", "shape": [None, 64]},
            output_schema={"name": "label", "dtype": "int64"}, accuracy=Decimal(accuracy),
            energy_per_1k_uj=int(Decimal(j_per_1k) * 1_000_000), energy_method=ENERGY_METHOD, profile_batch_size=32,
            latency_p50_us=p95_us * 6 // 10, latency_p95_us=p95_us, rows_per_second=25_000,
            training_energy_uj=int(Decimal(training_kwh) * 3_600_000_000_000),
            training_co2e_ug=int(Decimal(training_g) * 1_000_000), training_method=ENERGY_METHOD)

    digits, digits_v1 = family("digits-classifier", "0.970000", "Handwritten digit recognition")
    baseline = variant(digits_v1, "baseline-v1", "baseline", "0.982222", "150", 2_900, "0.412", "77.3")
    int8 = variant(digits_v1, "int8-v1", "int8-quantised", "0.977778", "62", 1_400, "0.006", "1.1")
    digits.default_variant = baseline
    digits.save(update_fields=["default_variant"])
    tickets, tickets_v1 = family("ticket-router", "0.900000", "Support ticket intent routing")
    router = variant(tickets_v1, "distilled-v2", "distilled", "0.931000", "95", 2_100, "1.870", "351.6")
    tickets.default_variant = router
    tickets.save(update_fields=["default_variant"])
    return {"digits": digits, "tickets": tickets, "baseline": baseline, "int8": int8, "router": router}


def _usage_row(tenant, variant, hour, *, mode, source, predictions, j_per_1k: Decimal, method, g_per_kwh, zone_label):
    from carbon import units
    from inference.models import UsageHour

    energy_uj = int(Decimal(predictions) * j_per_1k * 1000)
    cpu_us = int(Decimal(energy_uj) / (WATTS[method] * PUE))
    return UsageHour(
        tenant=tenant, hour=hour, variant=variant, mode=mode, source=source, energy_method=method,
        predictions=predictions, requests=max(predictions // (1 if source == "online" else 5000), 1), cpu_us=cpu_us,
        inference_cpu_us=cpu_us * 8 // 10, energy_uj=energy_uj,
        co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=g_per_kwh),
        embodied_co2e_ug=units.embodied_ug(cpu_us=cpu_us, ug_per_cpu_second=EMBODIED_UG_PER_CPU_SECOND),
        intensity_g_per_kwh=g_per_kwh, intensity_source=f"electricitymaps:{zone_label}:2023-replayed (lifecycle)")


def _load(hour: datetime, rng: random.Random, scale: float) -> int:
    """Predictions in an hour: office-hours peak, quieter weekends, growth over the year, noise."""
    local = (hour.hour + 24) % 24
    diurnal = 0.35 + 0.65 * math.exp(-((local - 13.5) ** 2) / 18)
    weekly = 0.55 if hour.weekday() >= 5 else 1.0
    growth = 1 + 0.35 * (hour.timetuple().tm_yday / 365)
    return max(int(scale * diurnal * weekly * growth * rng.uniform(0.85, 1.15)), 0)


def _overhead(month: int) -> Decimal:
    """Measured energy per prediction over the profile: request overhead varies month to month;
    August carries a (demo) regression that breaches the SLA by more than 20 %."""
    factors = {1: "1.03", 2: "1.01", 3: "1.06", 4: "1.04", 5: "1.02", 6: "1.08", 7: "1.05", 8: "1.29", 9: "1.07",
               10: "0.97", 11: "0.98", 12: "1.00"}
    return Decimal(factors[month])


def _main_tenant_usage(tenant, reg, year: int, rng: random.Random, grid) -> list:
    rows = []
    hour = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    while hour < end:
        g = _intensity(grid, hour)
        method = ENERGY_METHOD_RAPL if hour.month >= 10 else ENERGY_METHOD
        overhead = _overhead(hour.month)
        adoption = 0.2 + 0.25 * (hour.timetuple().tm_yday / 365)  # efficiency mode's share grows
        total = _load(hour, rng, 60_000)
        efficiency = int(total * adoption)
        rows.append(_usage_row(tenant, reg["baseline"], hour, mode="standard", source="online",
                               predictions=total - efficiency, j_per_1k=Decimal(150) * overhead, method=method,
                               g_per_kwh=g, zone_label="GB"))
        rows.append(_usage_row(tenant, reg["int8"], hour, mode="efficiency", source="online", predictions=efficiency,
                               j_per_1k=Decimal(62) * (1 + (overhead - 1) / 3), method=method, g_per_kwh=g,
                               zone_label="GB"))
        tickets = _load(hour, rng, 9_000)
        if tickets:
            rows.append(_usage_row(tenant, reg["router"], hour, mode="standard", source="online", predictions=tickets,
                                   j_per_1k=Decimal(97), method=method, g_per_kwh=g, zone_label="GB"))
        hour += timedelta(hours=1)
    return rows


def _batch_jobs(tenant, reg, year: int, rng: random.Random, grid) -> tuple[list, dict]:
    """Green-tier jobs ~3 a week, each planned into the lowest-carbon window before a 14-hour deadline."""
    from carbon import units
    from inference.models import BatchInput, BatchJob

    jobs, usage = [], {}
    day = datetime(year, 1, 2, tzinfo=UTC)
    n = 0
    while day.year == year:
        for _ in range(rng.choice([0, 0, 1])):
            n += 1
            submitted = day.replace(hour=rng.choice([8, 9, 10, 14, 16, 17]))
            hours = rng.choice([1, 2, 2, 3])
            candidates = []
            for offset in range(0, 14 - hours + 1):
                start = submitted + timedelta(hours=offset)
                mean = sum(_intensity(grid, start + timedelta(hours=h)) for h in range(hours)) / hours
                candidates.append((mean, offset, start))
            run_now = candidates[0][0]
            planned, offset, start = min(candidates)
            if start + timedelta(hours=hours) > datetime(year + 1, 1, 1, tzinfo=UTC):
                continue
            rows = rng.randrange(200_000, 1_400_000, 1000)
            energy = int(Decimal(rows) * Decimal(62) * Decimal("0.72") * 1000)
            batch_input = BatchInput.objects.create(tenant=tenant, sha256=f"{n:064x}", format="csv",
                                                    size_bytes=rows * 180, rows=rows,
                                                    path=f"batches/{tenant.id}/inputs/{n:064x}.csv")
            finished = start + timedelta(hours=hours)
            jobs.append(BatchJob(
                tenant=tenant, input=batch_input, family=reg["digits"], variant=reg["int8"], mode="efficiency",
                tier="green", deadline=submitted + timedelta(hours=14), status=BatchJob.Status.SUCCEEDED,
                estimated_seconds=hours * 3600, planned_start=start, planned_end=finished,
                run_now_g_per_kwh=run_now.quantize(Decimal("0.001")),
                planned_g_per_kwh=planned.quantize(Decimal("0.001")),
                plan_provider="history", plan_method="history", plan_measurable=True,
                plan_explanation=(f"Run {start:%Y-%m-%d %H:%M} UTC: mean {planned:.0f} gCO2e/kWh instead of "
                                  f"{run_now:.0f}"),
                last_planned_at=submitted, attempts=1, started_at=start, finished_at=finished, rows_done=rows,
                cpu_us=int(Decimal(energy) / (WATTS[ENERGY_METHOD] * PUE)), energy_uj=energy,
                actual_g_per_kwh=planned.quantize(Decimal("0.001")),
                co2e_ug=units.co2e_ug(energy_uj=energy, g_per_kwh=planned),
                run_now_co2e_ug=units.co2e_ug(energy_uj=energy, g_per_kwh=run_now)))
            for h in range(hours):
                key = start + timedelta(hours=h)
                usage[key] = usage.get(key, 0) + rows // hours
        day += timedelta(days=1)
    for job in jobs:
        job.save()
        # submitted_at is auto_now_add: set it to the (past) submission time
        BatchJob.all_tenants.filter(id=job.id).update(submitted_at=job.last_planned_at)
    return jobs, usage


def _small_tenant_usage(tenant, variant, mode, start, end, scale, j_per_1k, zone, rng) -> list:
    grid = _grid_series(zone)
    rows, hour = [], start
    while hour < end:
        predictions = _load(hour, rng, scale)
        if predictions:
            rows.append(_usage_row(tenant, variant, hour, mode=mode, source="online", predictions=predictions,
                                   j_per_1k=j_per_1k, method=ENERGY_METHOD, g_per_kwh=_intensity(grid, hour),
                                   zone_label=zone))
        hour += timedelta(hours=1)
    return rows


def demo_data_create(*, year: int = 2025, seed: int = 7) -> Demo:
    """The demo world described in the module docstring. Deterministic for a seed."""
    from billing.models import PriceVersion
    from billing.periods import Period
    from billing.services import invoice_create_for_period
    from inference.models import UsageHour
    from reports.sla import sla_terms_create
    from tenants.models import Tenant
    from tenants.scope import tenant_scope
    from tenants.services import tenant_create

    rng = random.Random(seed)
    reg = _registry()
    since = datetime(year - 1, 1, 1, tzinfo=UTC)
    for currency, base in (("EUR", (4900, 9900)), ("USD", (5900, 11900))):
        PriceVersion.objects.create(
            currency=currency, effective_from=since, base_fee_standard_minor=base[0], base_fee_green_minor=base[1],
            standard_per_1k_minor=Decimal("2.5"), efficiency_per_1k_minor=Decimal("1.5"),
            accurate_per_1k_minor=Decimal("4"), batch_per_1k_minor=Decimal("1"), green_premium_percent=Decimal("15"))

    def tenant(slug, name, zone, currency, tier="standard"):
        t = tenant_create(slug=slug, name=name, grid_zone=zone, tier=tier, currency=currency)
        Tenant.objects.filter(id=t.id).update(created_at=datetime(year - 1, 12, 1, tzinfo=UTC))
        t.refresh_from_db()
        return t

    main = tenant("northwind-analytics", "Northwind Analytics Ltd", "GB", "EUR", tier="green")
    grid = _grid_series("GB")
    with tenant_scope(main.id):
        UsageHour.objects.bulk_create(_main_tenant_usage(main, reg, year, rng, grid), batch_size=5000)
        jobs, batch_usage = _batch_jobs(main, reg, year, rng, grid)
        UsageHour.objects.bulk_create([
            _usage_row(main, reg["int8"], hour, mode="efficiency", source="batch", predictions=predictions,
                       j_per_1k=Decimal(62) * Decimal("0.72"), method=ENERGY_METHOD,
                       g_per_kwh=_intensity(grid, hour), zone_label="GB")
            for hour, predictions in sorted(batch_usage.items())], batch_size=5000)
    start = datetime(year, 1, 1, tzinfo=UTC)
    sla_terms_create(tenant=main, family=reg["digits"], mode="standard", effective_from=start,
                     target_energy_per_1k_uj=158_400_000, target_latency_p95_us=5_000,
                     note="Standard mode: 0.044 Wh per 1,000 predictions")
    sla_terms_create(tenant=main, family=reg["digits"], mode="efficiency", effective_from=start,
                     target_energy_per_1k_uj=66_600_000, target_latency_p95_us=2_000,
                     note="Efficiency mode: 0.0185 Wh per 1,000 predictions")
    sla_terms_create(tenant=main, family=reg["digits"], mode="efficiency",
                     effective_from=datetime(year, 7, 16, tzinfo=UTC), target_energy_per_1k_uj=64_800_000,
                     target_latency_p95_us=2_000, note="Tightened from 16 July: 0.018 Wh per 1,000 predictions")

    december = Period.month(year, 12)
    others = []
    for slug, name, zone, currency, variant, mode, scale, j, target in (
            ("alder-health", "Alder Health GmbH", "DE", "EUR", "baseline", "standard", 14_000, "149", 158_400_000),
            ("kestrel-logistics", "Kestrel Logistics Inc.", "US-CAL-CISO", "USD", "int8", "efficiency", 30_000, "81",
             66_600_000),
            ("brightwater-energy", "Brightwater Energy plc", "GB", "EUR", "router", "standard", 5_000, "96", None),
            ("quiet-labs", "Quiet Labs", "GB", "EUR", None, None, 0, "0", None)):
        other = tenant(slug, name, zone, currency)
        others.append(other)
        if variant:
            with tenant_scope(other.id):
                UsageHour.objects.bulk_create(_small_tenant_usage(
                    other, reg[variant], mode, datetime(year, 11, 1, tzinfo=UTC), december.end, scale, Decimal(j),
                    zone, rng))
        if target:
            family = reg["tickets"] if variant == "router" else reg["digits"]
            sla_terms_create(tenant=other, family=family, mode=mode, effective_from=datetime(year, 11, 1, tzinfo=UTC),
                             target_energy_per_1k_uj=target)
    for month in range(1, 13):
        invoice_create_for_period(tenant=main, period=Period.month(year, month))
    for other in others[:3]:
        invoice_create_for_period(tenant=other, period=december)
    return Demo(tenant=main, others=others, year=year, finance_month=december.label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database (default: temporary SQLite)")
    args = parser.parse_args()
    tmp = setup(database_url=args.database_url)
    from django.db import connection

    from reports.documents import carbon_report_document
    from reports.periods import report_period_parse
    from reports.selectors import carbon_report_inputs
    from tenants.scope import tenant_scope

    started = time.perf_counter()
    demo = demo_data_create(year=args.year)
    setup_seconds = time.perf_counter() - started
    from inference.models import UsageHour

    with tenant_scope(demo.tenant.id):
        rows = UsageHour.objects.filter(tenant=demo.tenant).count()
    print(f"demo data: {rows} ledger rows for {demo.tenant.slug} in {args.year} ({setup_seconds:.1f} s to create), "
          f"database {connection.vendor}, temp dir {tmp}")

    period = report_period_parse(str(args.year))
    timings, inputs_timings = [], []
    cpu_timings = []
    for run in range(args.runs + 1):
        c0, t0 = time.process_time(), time.perf_counter()
        inputs = carbon_report_inputs(tenant=demo.tenant, period=period)
        t1 = time.perf_counter()
        document = carbon_report_document(inputs)
        t2, c2 = time.perf_counter(), time.process_time()
        label = "warm-up" if run == 0 else f"run {run}"
        print(f"{label}: {t2 - t0:.3f} s (inputs {t1 - t0:.3f} s, charts + PDF {t2 - t1:.3f} s; CPU {c2 - c0:.3f} s), "
              f"{document.pdf.pages} pages, {len(document.pdf.content):,} bytes")
        if run:
            timings.append(t2 - t0)
            inputs_timings.append(t1 - t0)
            cpu_timings.append(c2 - c0)
    result = {
        "seconds_per_report": round(statistics.median(timings), 3),
        "best_seconds": round(min(timings), 3),
        "cpu_seconds_per_report": round(statistics.median(cpu_timings), 3),
        "inputs_seconds": round(statistics.median(inputs_timings), 3),
        "runs": args.runs, "ledger_rows": rows, "pages": document.pdf.pages, "database": connection.vendor,
        "target_seconds": 2.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
