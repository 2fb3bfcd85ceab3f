"""Metering guarantees: exact counts under concurrency, nothing lost when a process dies."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from inference.metering import SUM_FIELDS, Meter, UsageRecord, _parse_line, recover_orphans
from inference.models import MeterSpoolCheckpoint, UsageHour
from tenants.scope import all_tenants_scope


def _record(tenant_id, variant_id, predictions=3, energy_uj=100):
    return UsageRecord(tenant_id=tenant_id, hour=1_796_000_400, variant_id=variant_id, mode="standard",
                       source="online", predictions=predictions, requests=1, cpu_us=20, inference_cpu_us=5,
                       energy_uj=energy_uj, co2e_ug=7, embodied_co2e_ug=1, intensity_g_per_kwh="123.000",
                       intensity_source="test")


def _ledger_totals():
    with all_tenants_scope():
        rows = list(UsageHour.all_tenants.all())
    return sum(r.predictions for r in rows), sum(r.requests for r in rows), sum(r.energy_uj for r in rows)


def _dead_meter(spool_dir: Path, records) -> Path:
    """A meter that recorded and then 'died': its lock released, nothing flushed."""
    meter = Meter(spool_dir=spool_dir, energy_method="cpu-model: test", flush_seconds=3600, fsync=False)
    for record in records:
        meter.record(record)
    path = spool_dir / meter._name
    meter._stop.set()
    os.close(meter._fd)  # the kernel drops the flock, exactly as when the process dies
    return path


@pytest.mark.django_db
def test_dead_process_spool_is_recovered_exactly_once(tmp_path, make_tenant, make_variant):
    tenant, variant = make_tenant(), make_variant()
    path = _dead_meter(tmp_path, [_record(tenant.id, variant.id, predictions=n, energy_uj=10 * n)
                                  for n in (1, 2, 3, 4)])
    with open(path, "ab") as fh:  # a torn last line: that response was never sent
        fh.write(b"%d\t1796000400\t%d\tstandard\tonline\t99" % (tenant.id, variant.id))
    assert recover_orphans(tmp_path) == 1
    assert _ledger_totals() == (10, 4, 100)
    assert not path.exists()
    assert recover_orphans(tmp_path) == 0
    assert _ledger_totals() == (10, 4, 100)
    assert MeterSpoolCheckpoint.objects.count() == 0


@pytest.mark.django_db
def test_recovery_resumes_after_the_last_checkpoint(tmp_path, make_tenant, make_variant):
    tenant, variant = make_tenant(), make_variant()
    meter = Meter(spool_dir=tmp_path, energy_method="cpu-model: test", flush_seconds=3600, fsync=False)
    meter.record(_record(tenant.id, variant.id, predictions=5))
    meter.flush()  # counted, checkpoint advanced
    meter.record(_record(tenant.id, variant.id, predictions=7))
    meter._stop.set()
    os.close(meter._fd)  # dies before the second flush
    assert _ledger_totals()[0] == 5
    assert recover_orphans(tmp_path) == 1
    assert _ledger_totals()[0] == 12


@pytest.mark.django_db
def test_live_process_spool_is_not_touched(tmp_path, make_tenant, make_variant):
    tenant, variant = make_tenant(), make_variant()
    meter = Meter(spool_dir=tmp_path, energy_method="cpu-model: test", flush_seconds=3600, fsync=False)
    meter.record(_record(tenant.id, variant.id))
    try:
        assert recover_orphans(tmp_path) == 0
        assert _ledger_totals() == (0, 0, 0)
        meter.flush()
        assert _ledger_totals()[0] == 3
    finally:
        meter._stop.set()
        os.close(meter._fd)


@pytest.mark.django_db
def test_failed_flush_keeps_usage_for_the_next_try(tmp_path, make_tenant, make_variant, monkeypatch):
    from inference import metering

    tenant, variant = make_tenant(), make_variant()
    meter = Meter(spool_dir=tmp_path, energy_method="cpu-model: test", flush_seconds=3600, fsync=False)
    meter.record(_record(tenant.id, variant.id, predictions=4))
    real = metering._upsert
    monkeypatch.setattr(metering, "_upsert", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("db down")))
    with pytest.raises(RuntimeError):
        meter.flush()
    assert _ledger_totals()[0] == 0
    monkeypatch.setattr(metering, "_upsert", real)
    meter.record(_record(tenant.id, variant.id, predictions=1))
    meter.flush()
    assert _ledger_totals()[0] == 5
    meter._stop.set()
    os.close(meter._fd)


def _record_mode(tenant_id, variant_id, mode):
    record = _record(tenant_id, variant_id)
    record.mode = mode
    return record


@pytest.mark.django_db(transaction=True)
def test_flushers_lock_ledger_rows_in_one_order(make_tenant, make_variant):
    """Two workers flushing the same tenant and hour must not deadlock: each flush takes
    the ledger rows' locks in key order, whatever order its requests arrived in."""
    import threading

    from django.db import connection, connections, transaction

    from inference import metering

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    tenant, variant = make_tenant(), make_variant()
    with all_tenants_scope():  # both ledger rows exist
        metering.usage_add([_record_mode(tenant.id, variant.id, m) for m in ("efficiency", "standard")],
                           energy_method="cpu-model: test")
    table = UsageHour._meta.db_table
    held, release, errors = threading.Event(), threading.Event(), []

    def in_thread(fn):
        def run():
            try:
                with all_tenants_scope(), transaction.atomic():
                    fn()
            except Exception as exc:  # reported to the test below
                errors.append(exc)
            finally:
                connections.close_all()
        return threading.Thread(target=run)

    def hold_first_row():  # another flusher holding the row that sorts first
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {table} WHERE tenant_id = %s AND mode = 'efficiency' FOR UPDATE",
                           [tenant.id])  # nosec B608 - constant table name
        held.set()
        release.wait(30)

    def flush_in_arrival_order():  # requests arrived standard first, efficiency second
        buckets = metering._aggregate([_record_mode(tenant.id, variant.id, m) for m in ("standard", "efficiency")])
        metering._upsert(buckets, "cpu-model: test")

    holder, flusher = in_thread(hold_first_row), in_thread(flush_in_arrival_order)
    holder.start()
    assert held.wait(30)
    flusher.start()
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:  # wait until the flusher is blocked on a row lock
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the flusher never waited for the held row")
        try:  # the row that sorts second must still be free
            with all_tenants_scope(), transaction.atomic():
                cursor.execute(f"SELECT 1 FROM {table} WHERE tenant_id = %s AND mode = 'standard' "
                               "FOR UPDATE NOWAIT", [tenant.id])  # nosec B608 - constant table name
            second_row_free = True
        except Exception:  # LockNotAvailable: the flusher took it before waiting
            second_row_free = False
    release.set()
    holder.join(30)
    flusher.join(30)
    assert errors == []
    assert second_row_free
    assert _ledger_totals()[0] == 4 * 3


# --- a real server process under concurrent clients -------------------------------------------


def _fire(base, key, rows_per_request, count, threads=8):
    def one(i):
        n = rows_per_request[i % len(rows_per_request)]
        response = requests.post(f"{base}/v1/models/digits-classifier/predict",
                                 data=json.dumps({"inputs": [[float(i % 16)] * 64] * n,
                                                  "mode": ["standard", "efficiency"][i % 2]}),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                                 timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        return len(body["predictions"]), body["usage"]["energy_uj"], body["usage"]["operational_co2e_ug"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_requests_are_metered_exactly(live_gunicorn, digits_family, make_tenant, make_key):
    base, proc, _ = live_gunicorn
    tenant = make_tenant()
    key = make_key(tenant).raw_key
    served = _fire(base, key, [1, 3, 8], 240)
    os.killpg(proc.pid, signal.SIGTERM)  # graceful stop: workers flush at exit
    proc.wait(30)
    assert list(live_gunicorn[2].glob("*.spool")) == []  # flushed and removed, nothing left to recover
    with all_tenants_scope():
        rows = list(UsageHour.all_tenants.filter(tenant=tenant))
    assert sum(r.predictions for r in rows) == sum(s[0] for s in served)
    assert sum(r.requests for r in rows) == 240
    assert sum(r.energy_uj for r in rows) == sum(s[1] for s in served)
    assert sum(r.co2e_ug for r in rows) == sum(s[2] for s in served)


def test_sigkilled_server_loses_no_served_prediction(live_gunicorn, digits_family, make_tenant, make_key):
    base, proc, spool = live_gunicorn
    tenant = make_tenant()
    key = make_key(tenant).raw_key
    served = _fire(base, key, [2, 5], 120)
    os.killpg(proc.pid, signal.SIGKILL)  # no atexit, no final flush
    proc.wait(10)
    recovered, deadline = 0, time.monotonic() + 20
    while list(spool.glob("*.spool")) and time.monotonic() < deadline:
        recovered += recover_orphans(spool)  # a worker's lock is released once the kernel reaps it
        time.sleep(0.1)
    assert recovered == 2  # one spool per gunicorn worker
    with all_tenants_scope():
        rows = list(UsageHour.all_tenants.filter(tenant=tenant))
    assert sum(r.predictions for r in rows) == sum(s[0] for s in served)
    assert sum(r.energy_uj for r in rows) == sum(s[1] for s in served)
    assert list(spool.glob("*.spool")) == []


def test_a_spool_line_round_trips_every_field_in_ledger_order():
    record = UsageRecord(tenant_id=7, hour=1_764_720_000, variant_id=3, mode="efficiency", source="online",
                         predictions=11, requests=13, cpu_us=17, inference_cpu_us=19, energy_uj=23, co2e_ug=29,
                         embodied_co2e_ug=31, intensity_g_per_kwh="123.456", intensity_source="history (direct)")
    assert _parse_line(record.line()) == record
    assert record.sums() == tuple(getattr(record, name) for name in SUM_FIELDS)
