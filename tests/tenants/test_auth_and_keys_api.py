import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tenants.scope import all_tenants_scope, tenant_scope

pytestmark = pytest.mark.django_db


def key_count(tenant):
    with tenant_scope(tenant.id):
        return ApiKey.objects.count()


def test_valid_key_resolves_tenant(make_tenant, api_client_for):
    tenant = make_tenant(slug="acme", grid_zone="DE", tier="green")
    client = api_client_for(tenant)
    response = client.get("/v1/tenant")
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"]["slug"] == "acme"
    assert body["tenant"]["grid_zone"] == "DE"
    assert body["tenant"]["tier"] == "green"
    assert body["key_prefix"] == client.api_key.prefix
    assert body["scopes"] == ["predict", "batches", "usage", "admin"]


def test_missing_key_is_401_json():
    response = APIClient().get("/v1/tenant")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", [
    "Bearer not-a-key",
    "Token gt_live_abc",
    "Bearer",
    "Bearer gt_live_AAAAAAAAAAAA_" + "B" * 38,  # well-formed but bad checksum
])
def test_malformed_key_is_401(header, make_tenant):
    response = APIClient().get("/v1/tenant", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_unknown_but_well_formed_key_is_401(make_tenant):
    from tenants import keys

    response = APIClient().get("/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {keys.generate().raw}")
    assert response.status_code == 401


def test_key_with_right_lookup_id_but_wrong_secret_is_401(make_tenant, api_client_for):
    from tenants import keys

    client = api_client_for(make_tenant())
    forged_body = client.raw_key[: len("gt_live_") + 13] + "x" * 32
    forged = forged_body + keys.checksum(forged_body)
    response = APIClient().get("/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401


def test_revoked_key_is_401(make_tenant, api_client_for):
    tenant = make_tenant()
    client = api_client_for(tenant)
    assert client.get("/v1/tenant").status_code == 200
    admin = api_client_for(tenant)
    assert admin.delete(f"/v1/api-keys/{client.api_key.id}").status_code == 200
    response = client.get("/v1/tenant")
    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "detail": "API key is invalid or revoked."}


def test_key_is_stored_hashed_and_shown_once(make_tenant, api_client_for):
    tenant = make_tenant()
    client = api_client_for(tenant)
    response = client.post("/v1/api-keys", {"name": "ci", "scopes": ["predict"]}, format="json")
    assert response.status_code == 201
    raw = response.json()["key"]
    with tenant_scope(tenant.id):
        stored = ApiKey.objects.get(id=response.json()["id"])
    assert raw not in str(stored.__dict__)
    assert stored.scopes == ["predict"]
    listing = client.get("/v1/api-keys").json()
    assert all("key" not in item for item in listing)
    assert [item["prefix"] for item in listing] == [stored.prefix, client.api_key.prefix]


def test_api_keys_need_admin_scope(make_tenant, api_client_for):
    tenant = make_tenant()
    client = api_client_for(tenant, scopes=["predict"])
    before = key_count(tenant)
    response = client.post("/v1/api-keys", {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert key_count(tenant) == before


def test_unknown_scope_is_400_and_creates_nothing(make_tenant, api_client_for):
    tenant = make_tenant()
    client = api_client_for(tenant)
    response = client.post("/v1/api-keys", {"scopes": ["root"]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "scopes" in response.json()["errors"]
    assert key_count(tenant) == 1


def test_revoking_another_tenants_key_is_404_and_changes_nothing(make_tenant, api_client_for):
    tenant_a, tenant_b = make_tenant(), make_tenant()
    client_a = api_client_for(tenant_a)
    client_b = api_client_for(tenant_b)
    response = client_a.delete(f"/v1/api-keys/{client_b.api_key.id}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    missing = client_a.delete("/v1/api-keys/999999999")
    assert missing.status_code == 404
    assert missing.json() == response.json()
    with all_tenants_scope():
        assert ApiKey.all_tenants.get(id=client_b.api_key.id).revoked_at is None
    assert client_b.get("/v1/tenant").status_code == 200


def test_key_listing_shows_only_own_tenant(make_tenant, api_client_for):
    tenant_a, tenant_b = make_tenant(), make_tenant()
    client_a = api_client_for(tenant_a)
    api_client_for(tenant_b)
    api_client_for(tenant_b)
    assert [k["id"] for k in client_a.get("/v1/api-keys").json()] == [client_a.api_key.id]
