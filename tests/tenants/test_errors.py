"""One JSON error shape for bad input, everywhere under /v1/."""

import json

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_tenant, api_client_for):
    tenant = make_tenant()
    client = api_client_for(tenant)
    client.tenant = tenant
    return client


def post_raw(client, body: bytes, content_type="application/json"):
    return client.generic("POST", "/v1/api-keys", body, content_type=content_type)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]


def assert_no_new_keys(client):
    with tenant_scope(client.tenant.id):
        assert ApiKey.objects.count() == 1


def test_wrong_content_type_is_415(admin):
    assert_error(post_raw(admin, b"name=x", "application/x-www-form-urlencoded"), 415, "unsupported_media_type")
    assert_no_new_keys(admin)


def test_malformed_json_is_400(admin):
    assert_error(post_raw(admin, b'{"name": '), 400, "malformed_request")
    assert_no_new_keys(admin)


@pytest.mark.parametrize("body", [b'{"name": NaN}', b'{"name": Infinity}', b'{"name": -Infinity}',
                                  b'{"name": 1e999}'])
def test_non_finite_numbers_are_400(admin, body):
    assert_error(post_raw(admin, body), 400, "malformed_request")
    assert_no_new_keys(admin)


def test_deep_nesting_is_400(admin):
    body = b"[" * 1000 + b"]" * 1000
    response = post_raw(admin, body)
    assert_error(response, 400, "malformed_request")
    assert "nested" in response.json()["detail"]
    assert_no_new_keys(admin)


def test_brackets_inside_strings_do_not_count_as_nesting(admin):
    response = admin.post("/v1/api-keys", {"name": "[" * 100}, format="json")
    assert response.status_code == 201


def test_ten_megabyte_body_is_413(admin):
    body = json.dumps({"name": "x" * (10 * 1024 * 1024)}).encode()
    assert_error(post_raw(admin, body), 413, "payload_too_large")
    assert_no_new_keys(admin)


def test_unknown_route_is_json_404():
    assert_error(APIClient().get("/v1/nope"), 404, "not_found")


def test_wrong_method_is_405(admin):
    assert_error(admin.put("/v1/tenant", {}, format="json"), 405, "method_not_allowed")


def test_validation_error_names_the_field(admin):
    response = admin.post("/v1/api-keys", {"name": "x" * 101}, format="json")
    assert_error(response, 400, "invalid_request")
    assert response.json()["detail"].startswith("name:")
    assert_no_new_keys(admin)


def test_unhandled_error_is_json_500(admin, monkeypatch):
    from tenants import apis

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(apis, "api_key_list", boom)
    client = admin
    client.raise_request_exception = False
    response = client.get("/v1/api-keys")
    assert_error(response, 500, "internal_error")
    assert "boom" not in response.content.decode()


def test_database_outage_is_a_clean_503(admin, monkeypatch):
    from django.db import OperationalError

    from tenants import apis

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(apis, "api_key_list", down)
    response = admin.get("/v1/api-keys")
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"
