"""Health, management commands, OpenAPI, production checks, and a real Celery worker."""

import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tenants.scope import all_tenants_scope
from tests.conftest import ROOT, service_env


@pytest.mark.django_db
def test_healthz_and_readyz():
    client = APIClient()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readyz_is_503_when_broker_is_down(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = APIClient().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error:")
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_create_tenant_and_key_commands(capsys):
    call_command("create_tenant", "acme", "--name", "Acme Ltd", "--zone", "FR", "--tier", "green")
    tenant = Tenant.objects.get(slug="acme")
    assert (tenant.name, tenant.grid_zone, tenant.tier) == ("Acme Ltd", "FR", "green")
    call_command("create_api_key", "acme", "--scopes", "predict,usage")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    response = APIClient().get("/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert response.json()["scopes"] == ["predict", "usage"]
    call_command("revoke_api_key", raw[: len("gt_live_") + 12])
    assert APIClient().get("/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["create_tenant", "Bad Slug"], "slug"),
    (["create_tenant", "ok", "--zone", "gb"], "grid_zone"),
    (["create_api_key", "nobody"], "no tenant"),
    (["revoke_api_key", "gt_live_AAAAAAAAAAAA"], "no API key"),
    (["revoke_api_key", "junk"], "expected a key prefix"),
])
def test_command_errors_are_one_line(args, message):
    with pytest.raises(CommandError, match=message):
        call_command(*args)


@pytest.mark.django_db
def test_duplicate_tenant_and_bad_scope_are_clear_errors(make_tenant):
    make_tenant(slug="dup")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_tenant", "dup")
    with pytest.raises(CommandError, match="unknown scope"):
        call_command("create_api_key", "dup", "--scopes", "root")
    with all_tenants_scope():
        assert ApiKey.all_tenants.count() == 0


def test_cli_error_exits_non_zero_without_traceback(transactional_db):
    env = service_env()
    result = subprocess.run([sys.executable, "manage.py", "create_api_key", "no-such-tenant"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: no tenant with slug 'no-such-tenant'"


def test_openapi_schema_validates():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings_test")
    result = subprocess.run([sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
                             "--file", os.devnull], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_deploy_check_passes_with_production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="0",
               SECRET_KEY="prod-" + "k3y" * 20, ALLOWED_HOSTS="greentier.example.com")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY",) and not k.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="0")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_schema_and_docs_are_served(db):
    client = APIClient()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/v1/api-keys" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_celery_smoke_through_real_worker(celery_worker, make_tenant, make_key):
    from tenants.tasks import tenant_ping

    tenant = make_tenant(slug="worker-smoke")
    make_key(tenant)
    make_key(tenant)
    make_key(make_tenant())
    result = tenant_ping.apply_async(args=[tenant.id], queue=celery_worker.queue)
    # disable_sync_subtasks: an eager task of an earlier test may leave Celery believing
    # this thread runs a task; here the test process only waits for the real worker.
    assert result.get(timeout=60, disable_sync_subtasks=False) == {"tenant": "worker-smoke", "api_keys": 2}
    assert "tenants.ping" in celery_worker.log_path.read_text()
