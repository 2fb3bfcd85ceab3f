"""Retention: exactly the expired rows go to Parquet (read back and compared), idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.db.models import Sum

from inference.models import BatchInput, BatchJob, UsageHour
from inference.retention import retention_policy_set, retention_run
from tenants.models import AuditEvent
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def ledger(make_tenant, make_variant, add_usage):
    tenant, other = make_tenant(), make_tenant()
    base, small = make_variant(name="baseline"), make_variant(name="small", technique="distilled")
    rows = []
    # August and September 2026 (expire under a 62-day policy on Dec 3), October (kept)
    for month in (8, 9, 10):
        start = datetime(2026, month, 1, tzinfo=UTC)
        for h in range(0, 48, 7):
            rows.append(add_usage(tenant, base, start + h * H, predictions=100 + h, energy_uj=1000 * h + 1,
                                  co2e_ug=h))
            rows.append(add_usage(tenant, small, start + h * H, mode="efficiency", predictions=10 + h,
                                  energy_uj=10 * h + 1, co2e_ug=1))
    add_usage(other, base, datetime(2026, 8, 1, tzinfo=UTC), predictions=5)  # other tenant: no policy change
    retention_policy_set(tenant=tenant, batch_inputs_days=30, batch_outputs_days=30, usage_detail_days=62,
                         actor="test")
    return tenant, other, rows


def sums(tenant, month):
    start = datetime(2026, month, 1, tzinfo=UTC)
    with tenant_scope(tenant.id):
        return UsageHour.objects.filter(hour__gte=start, hour__lt=start + timedelta(days=31)).aggregate(
            p=Sum("predictions"), e=Sum("energy_uj"), c=Sum("co2e_ug"))


def test_expired_months_are_archived_exactly_and_compacted(ledger):
    tenant, other, rows = ledger
    before = {m: sums(tenant, m) for m in (8, 9, 10)}
    result = retention_run(now=NOW)
    assert result["usage_months_archived"] == 2
    expired = [r for r in rows if r.hour.month in (8, 9)]
    assert result["usage_rows_archived"] == len(expired)
    # totals unchanged: invoices and reports still add up
    assert {m: sums(tenant, m) for m in (8, 9, 10)} == before
    with tenant_scope(tenant.id):
        aug = list(UsageHour.objects.filter(hour__month=8).order_by("variant_id"))
        assert [(r.monthly_aggregate, r.hour) for r in aug] == [(True, datetime(2026, 8, 1, tzinfo=UTC))] * 2
        assert UsageHour.objects.filter(hour__month=10, monthly_aggregate=False).count() == 14
    # the archive holds exactly the expired detail rows
    archive = pd.read_parquet(Path(settings.COLD_STORAGE_DIR) / str(tenant.id) / "usage" / "2026-08.parquet")
    aug_rows = sorted((r.hour, r.variant_id, r.predictions, r.energy_uj) for r in expired if r.hour.month == 8)
    assert sorted(zip(archive["hour"].dt.to_pydatetime(), archive["variant_id"], archive["predictions"],
                      archive["energy_uj"])) == aug_rows
    # idempotent: a second run changes nothing
    again = retention_run(now=NOW)
    assert again["usage_rows_archived"] == 0 and again["usage_months_archived"] == 0
    assert {m: sums(tenant, m) for m in (8, 9, 10)} == before
    # the other tenant (default 400 days) is untouched
    with tenant_scope(other.id):
        assert UsageHour.objects.filter(monthly_aggregate=True).count() == 0


def test_batch_files_past_retention_are_deleted_unless_still_needed(ledger, make_variant, make_tenant):
    tenant, _, _ = ledger
    variant = make_variant(name="b2")
    media = Path(settings.MEDIA_ROOT)

    def make_input(name, created):
        path = f"batches/{tenant.id}/inputs/{name}.csv"
        (media / path).parent.mkdir(parents=True, exist_ok=True)
        (media / path).write_text("x0\n1\n")
        with tenant_scope(tenant.id):
            item = BatchInput.objects.create(tenant=tenant, sha256=name * 64, format="csv", size_bytes=5, rows=1,
                                             path=path)
            BatchInput.objects.filter(id=item.id).update(created_at=created)
        return item

    old_done, old_pending = make_input("a", NOW - 60 * 24 * H), make_input("b", NOW - 60 * 24 * H)
    fresh = make_input("c", NOW - 24 * H)
    common = dict(tenant=tenant, family=variant.version.family, variant=variant, mode="standard", tier="standard",
                  deadline=NOW, estimated_seconds=1, planned_start=NOW, planned_end=NOW, run_now_g_per_kwh=1,
                  planned_g_per_kwh=1, plan_provider="t", plan_method="t", plan_explanation="t", last_planned_at=NOW)
    with tenant_scope(tenant.id):
        result_path = f"batches/{tenant.id}/results/1.parquet"
        (media / result_path).parent.mkdir(parents=True, exist_ok=True)
        (media / result_path).write_bytes(b"PAR1")
        done = BatchJob.objects.create(input=old_done, status="succeeded", result_path=result_path,
                                       finished_at=NOW - 40 * 24 * H, **common)
        BatchJob.objects.create(input=old_pending, status="planned", **common)
    result = retention_run(now=NOW)
    assert (result["batch_outputs_deleted"], result["batch_inputs_deleted"]) == (1, 1)
    assert not (media / result_path).exists()
    assert not (media / old_done.path).exists()
    assert (media / old_pending.path).exists()  # a planned job still needs it
    assert (media / fresh.path).exists()
    with tenant_scope(tenant.id):
        assert BatchJob.objects.get(id=done.id).result_purged_at == NOW
    again = retention_run(now=NOW)
    assert (again["batch_outputs_deleted"], again["batch_inputs_deleted"]) == (0, 0)


def test_retention_api_report_policy_and_audit(ledger, api_client_for):
    tenant, other, _ = ledger
    client = api_client_for(tenant)
    report = client.get("/v1/retention").json()
    assert report["policy"] == {"batch_inputs_days": 30, "batch_outputs_days": 30, "usage_detail_days": 62}
    assert report["usage_detail"]["hourly_rows"] == 42
    too_short = client.put("/v1/retention", {"batch_inputs_days": 7, "batch_outputs_days": 7, "usage_detail_days": 10},
                           format="json")
    assert too_short.status_code == 400 and too_short.json()["detail"].startswith("usage_detail_days:")
    ok = client.put("/v1/retention", {"batch_inputs_days": 7, "batch_outputs_days": 14, "usage_detail_days": 90},
                    format="json")
    assert ok.status_code == 200
    assert ok.json()["policy"]["usage_detail_days"] == 90
    with tenant_scope(tenant.id):
        changes = list(AuditEvent.objects.filter(action="retention.set").order_by("id"))
    assert [c.after["usage_detail_days"] for c in changes] == [62, 90]
    assert changes[1].before["usage_detail_days"] == 62
    assert api_client_for(other).get("/v1/retention").json()["policy"]["usage_detail_days"] == 400
