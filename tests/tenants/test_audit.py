"""The audit trail: one append-only row per change, with before and after."""

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from tenants.models import AuditEvent
from tenants.scope import all_tenants_scope, tenant_scope
from tenants.services import audit_record, tenant_change_tier

pytestmark = pytest.mark.django_db


def events(tenant):
    with tenant_scope(tenant.id):
        return list(AuditEvent.objects.order_by("id"))


def test_tier_change_and_key_lifecycle_are_audited(make_tenant, api_client_for):
    tenant = make_tenant(tier="standard")
    client = api_client_for(tenant)  # creates a key: audited
    created = client.post("/v1/api-keys", {"name": "ci", "scopes": ["predict"]}, format="json").json()
    client.delete(f"/v1/api-keys/{created['id']}")
    tenant_change_tier(tenant=tenant, tier="green", changed_by="alice")
    got = [(e.action, e.actor, e.before, e.after) for e in events(tenant)]
    assert got[0][0] == "api_key.create"
    assert got[1] == ("api_key.create", f"api:{client.api_key.prefix}", None,
                      {"prefix": created["prefix"], "name": "ci", "scopes": ["predict"]})
    assert got[2][0:2] == ("api_key.revoke", f"api:{client.api_key.prefix}")
    assert got[3] == ("tier.change", "alice", {"tier": "standard"}, {"tier": "green"})
    assert len(got) == 4
    # visible to the tenant's admins through the API, newest first
    listing = client.get("/v1/audit").json()
    assert [e["action"] for e in listing] == ["tier.change", "api_key.revoke", "api_key.create", "api_key.create"]


def test_audit_rows_cannot_be_changed_or_deleted(make_tenant):
    tenant = make_tenant()
    event = audit_record(actor="bob", action="test.change", target_type="thing", tenant=tenant, after={"x": 1})
    for sql in ("UPDATE tenants_auditevent SET actor = 'mallory' WHERE id = %s",
                "DELETE FROM tenants_auditevent WHERE id = %s"):
        with tenant_scope(tenant.id), pytest.raises(ProgrammingError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [event.id])
    assert [e.actor for e in events(tenant)] == ["bob"]


def test_tenants_see_only_their_own_events(make_tenant, api_client_for):
    a, b = make_tenant(), make_tenant()
    audit_record(actor="x", action="test.a", target_type="t", tenant=a)
    audit_record(actor="staff", action="price.update", target_type="price", tenant=None)  # platform-wide
    client_b = api_client_for(b)
    assert [e["action"] for e in client_b.get("/v1/audit").json()] == ["api_key.create"]
    with connection.cursor() as cursor, tenant_scope(a.id):
        cursor.execute("SELECT action FROM tenants_auditevent ORDER BY id")  # raw SQL: RLS still applies
        assert [r[0] for r in cursor.fetchall()] == ["test.a"]
    with all_tenants_scope():
        assert AuditEvent.objects.filter(tenant__isnull=True).count() == 1
    assert api_client_for(b, scopes=["usage"]).get("/v1/audit").status_code == 403


def test_staff_price_and_sla_term_edits_are_audited(make_tenant, make_variant, admin_user, rf):
    from datetime import UTC, datetime
    from decimal import Decimal

    from django.contrib import admin

    from billing.models import PriceVersion
    from reports.models import SlaTerms
    from tenants.scope import admin_all_tenants_scope

    request = rf.post("/admin/")
    request.user = admin_user
    price_admin = admin.site._registry[PriceVersion]
    with admin_all_tenants_scope():
        price = PriceVersion(currency="EUR", effective_from=datetime(2027, 1, 1, tzinfo=UTC),
                             base_fee_standard_minor=4900, base_fee_green_minor=9900,
                             standard_per_1k_minor=Decimal("50"), efficiency_per_1k_minor=Decimal("30"),
                             accurate_per_1k_minor=Decimal("80"), batch_per_1k_minor=Decimal("20"),
                             green_premium_percent=Decimal("20"))
        price_admin.save_model(request, price, form=None, change=False)
        price.standard_per_1k_minor = Decimal("55")
        price_admin.save_model(request, price, form=None, change=True)
        events = list(AuditEvent.objects.filter(action="price.change").order_by("id"))
    assert [(e.actor, e.tenant_id) for e in events] == [(admin_user.get_username(), None)] * 2
    assert events[0].before is None
    assert Decimal(events[1].before["standard_per_1k_minor"]) == Decimal("50")
    assert Decimal(events[1].after["standard_per_1k_minor"]) == Decimal("55")

    tenant = make_tenant()
    variant = make_variant()
    terms_admin = admin.site._registry[SlaTerms]
    with admin_all_tenants_scope():
        terms = SlaTerms(tenant=tenant, family=variant.version.family, mode="standard",
                         effective_from=datetime(2027, 1, 1, tzinfo=UTC), target_energy_per_1k_uj=1_000_000)
        terms_admin.save_model(request, terms, form=None, change=False)
    with tenant_scope(tenant.id):  # the tenant's admins see changes to their own terms
        [event] = list(AuditEvent.objects.filter(action="sla_terms.change"))
    assert (event.actor, event.before) == (admin_user.get_username(), None)
    assert event.after["target_energy_per_1k_uj"] == 1_000_000
