"""Who may see and change what, through Django's test client: anonymous visitors are sent
to sign in, viewers' POSTs are 403 with nothing changed, and another tenant's pages,
ids and files answer exactly like missing ones (404)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from billing.models import Invoice
from billing.periods import Period
from billing.services import invoice_create_for_period
from inference.models import BatchInput, BatchJob
from reports.models import Report
from tenants.models import ApiKey, Tenant, TierChange
from tenants.scope import tenant_scope
from tenants.services import api_key_create
from tests.portal.conftest import seed_green_jobs

pytestmark = pytest.mark.django_db

_CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def body(response) -> bytes:
    """The page without its per-render CSRF token (masked differently on every render)."""
    return _CSRF.sub(b"", response.content)


@pytest.fixture
def world(make_account, make_user, member):
    """Tenants A and B, each with a key, an invoice, a ready report and a finished batch job."""
    out = {}
    for name in ("a", "b"):
        account = make_account(name=f"Tenant {name.upper()}", slug=f"tenant-{name}", usage_step_hours=24)
        tenant = account.tenant
        key = api_key_create(tenant=tenant, name=f"{name}-key")
        invoice, _ = invoice_create_for_period(tenant=tenant, period=Period.previous(now=timezone.now()))
        [job] = seed_green_jobs(tenant, account.family, account.variants["baseline"],
                                timezone.now() - timedelta(days=10), count=1)
        with tenant_scope(tenant.id):
            report = Report.objects.create(
                tenant=tenant, kind="carbon_report", period="2025", status="ready", sha256="0" * 64,
                period_start=timezone.now() - timedelta(days=400), period_end=timezone.now() - timedelta(days=35),
                path=f"reports/{tenant.id}/{name}.pdf")
        target = Path(settings.MEDIA_ROOT) / report.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"%PDF-1.7 " + name.encode())
        out[name] = {"tenant": tenant, "key": key.api_key, "invoice": invoice, "report": report, "job": job}
    out["admin_a"] = make_user()
    out["viewer_a"] = make_user()
    out["admin_b"] = make_user()
    member(out["a"]["tenant"], out["admin_a"], "admin")
    member(out["a"]["tenant"], out["viewer_a"], "viewer")
    member(out["b"]["tenant"], out["admin_b"], "admin")
    return out


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def get_urls(slug: str, ids: dict) -> list[str]:
    """Every GET route of a tenant, with that tenant's own object ids."""
    return [
        f"/portal/t/{slug}/", f"/portal/t/{slug}/tier/", f"/portal/t/{slug}/keys/", f"/portal/t/{slug}/batches/",
        f"/portal/t/{slug}/reports/",
        f"/portal/t/{slug}/batches/{ids['job'].id}/results.csv",
        f"/portal/t/{slug}/batches/{ids['job'].id}/results.parquet",
        f"/portal/t/{slug}/reports/{ids['report'].id}/download/",
        f"/portal/t/{slug}/invoices/{ids['invoice'].id}/",
        f"/portal/t/{slug}/invoices/{ids['invoice'].id}.csv",
    ]


def snapshot(world) -> dict:
    """Everything a portal POST could change, for both tenants."""
    out = {}
    for name in ("a", "b"):
        tenant = world[name]["tenant"]
        with tenant_scope(tenant.id):
            out[name] = (
                Tenant.objects.get(id=tenant.id).tier, TierChange.objects.count(),
                sorted(ApiKey.objects.values_list("id", "revoked_at")), BatchJob.objects.count(),
                BatchInput.objects.count(), Report.objects.count(), Invoice.objects.count(),
            )
    return out


def test_anonymous_visitors_are_sent_to_sign_in_and_change_nothing(world):
    client = Client()
    before = snapshot(world)
    slug = world["a"]["tenant"].slug
    for url in get_urls(slug, world["a"]) + ["/portal/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/portal/login/?next="), url
    for url in (f"/portal/t/{slug}/tier/", f"/portal/t/{slug}/keys/", f"/portal/t/{slug}/batches/",
                f"/portal/t/{slug}/reports/", f"/portal/t/{slug}/keys/{world['a']['key'].id}/revoke/"):
        client = Client(enforce_csrf_checks=False)
        assert client.post(url, {"tier": "green", "kind": "carbon_report", "period": "2025"}).status_code == 302
    assert snapshot(world) == before


def test_viewers_see_every_page_without_forms(world):
    client = client_for(world["viewer_a"])
    for url in get_urls("tenant-a", world["a"])[:5]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b'method="post"' not in body(response).replace(b'method="post" action="/portal/logout/"', b""), url
        assert b"You have <strong>view</strong> access" in response.content


def test_viewer_posts_are_403_and_change_nothing(world):
    client = client_for(world["viewer_a"])
    before = snapshot(world)
    key_id = world["a"]["key"].id
    posts = [
        ("/portal/t/tenant-a/tier/", {"tier": "green"}),
        ("/portal/t/tenant-a/keys/", {"name": "sneaky", "scopes": ["admin"]}),
        (f"/portal/t/tenant-a/keys/{key_id}/revoke/", {}),
        ("/portal/t/tenant-a/batches/", {"model": "digits-classifier", "mode": "standard",
                                         "deadline": "2030-01-01T00:00"}),
        ("/portal/t/tenant-a/reports/", {"kind": "carbon_report", "period": "2025"}),
        ("/portal/t/tenant-a/", {}),  # even where no POST exists, a viewer's is refused first
    ]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert b"Only admins can do that" in response.content
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)("/portal/t/tenant-a/tier/").status_code == 403
    assert snapshot(world) == before


def test_other_tenants_pages_and_files_are_404_like_missing_ones(world):
    client = client_for(world["admin_a"])
    missing_page = body(client.get("/portal/t/no-such-tenant/"))
    assert client.get("/portal/t/no-such-tenant/").status_code == 404
    # B's slug, with B's ids: every route.
    for url in get_urls("tenant-b", world["b"]):
        response = client.get(url)
        assert response.status_code == 404, url
        assert body(response) == missing_page, url
    # A's own slug with B's ids, and with ids that exist nowhere (or beyond bigint): identical.
    for theirs, nowhere, huge in zip(get_urls("tenant-a", world["b"])[5:],
                                     get_urls("tenant-a", {k: type("X", (), {"id": 987654321}) for k in
                                                           ("job", "report", "invoice")})[5:],
                                     get_urls("tenant-a", {k: type("X", (), {"id": 2**64}) for k in
                                                           ("job", "report", "invoice")})[5:], strict=True):
        for url in (theirs, nowhere, huge):
            response = client.get(url)
            assert response.status_code == 404, url
            assert body(response) == missing_page, url
    # and the same for B's own admin, the other way round (the 404 is not an accident of data)
    assert client_for(world["admin_b"]).get(get_urls("tenant-a", world["a"])[7]).status_code == 404


def test_cross_tenant_posts_are_404_and_change_nothing(world):
    client = client_for(world["admin_a"])
    before = snapshot(world)
    b_key = world["b"]["key"].id
    for url, data in [
        ("/portal/t/tenant-b/tier/", {"tier": "green"}),
        ("/portal/t/tenant-b/keys/", {"name": "planted"}),
        (f"/portal/t/tenant-b/keys/{b_key}/revoke/", {}),
        (f"/portal/t/tenant-a/keys/{b_key}/revoke/", {}),  # their key under my own account
        ("/portal/t/tenant-a/keys/987654321/revoke/", {}),
        (f"/portal/t/tenant-a/keys/{2**64}/revoke/", {}),
        ("/portal/t/tenant-b/reports/", {"kind": "carbon_report", "period": "2025"}),
    ]:
        assert client.post(url, data).status_code == 404, url
    assert snapshot(world) == before


def test_own_files_download(world):
    client = client_for(world["viewer_a"])  # reading is for viewers too
    a = world["a"]
    response = client.get(f"/portal/t/tenant-a/reports/{a['report'].id}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.7 a"
    assert response["Content-Disposition"] == 'attachment; filename="greentier-carbon-report-2025-tenant-a.pdf"'
    csv = client.get(f"/portal/t/tenant-a/invoices/{a['invoice'].id}.csv")
    assert csv.status_code == 200
    assert csv.content.decode().splitlines()[-1].split(",")[14] == str(a["invoice"].total_minor)
    # a finished job whose result file is gone (retention) is missing, not a 500
    assert client.get(f"/portal/t/tenant-a/batches/{a['job'].id}/results.csv").status_code == 404


def test_a_report_not_ready_is_not_downloadable(world):
    a = world["a"]
    with tenant_scope(a["tenant"].id):
        assert Report.objects.filter(id=a["report"].id).update(status="pending") == 1
    response = client_for(world["admin_a"]).get(f"/portal/t/tenant-a/reports/{a['report'].id}/download/")
    assert response.status_code == 404


def test_switcher_and_home_list_only_own_memberships(world, make_user):
    client = client_for(world["admin_a"])
    assert client.get("/portal/").url == "/portal/t/tenant-a/"  # one membership: straight there
    page = client.get("/portal/t/tenant-a/").content.decode()
    assert "Tenant B" not in page
    assert client.get("/portal/switch/?tenant=tenant-b", follow=True).status_code == 404
    nobody = client_for(make_user())
    response = nobody.get("/portal/")
    assert response.status_code == 200
    assert "You are not a member of any account yet" in response.content.decode()
