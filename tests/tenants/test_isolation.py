"""Both walls: the fail-closed manager and PostgreSQL row-level security."""

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from tenants.models import ApiKey, Membership, TenantOwnedModel
from tenants.scope import TenantScopeError, all_tenants_scope, tenant_scope

pytestmark = pytest.mark.django_db


def test_manager_fails_closed_without_tenant(make_tenant, make_key):
    make_key(make_tenant())
    with pytest.raises(TenantScopeError):
        list(ApiKey.objects.all())
    with pytest.raises(TenantScopeError):
        ApiKey.objects.filter(name="x").count()
    with all_tenants_scope(), pytest.raises(TenantScopeError):
        ApiKey.objects.count()


def test_manager_filters_to_scoped_tenant(make_tenant, make_key):
    a, b = make_tenant(), make_tenant()
    make_key(a)
    make_key(b)
    make_key(b)
    with tenant_scope(a.id):
        assert ApiKey.objects.count() == 1
    with tenant_scope(b.id):
        assert ApiKey.objects.count() == 2
    with all_tenants_scope():
        assert ApiKey.all_tenants.count() == 3


def raw_count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # bypasses the ORM filter on purpose
        return cursor.fetchone()[0]


def test_connection_is_the_ordinary_app_role():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == ("greentier_app", False, False)


def test_rls_hides_other_tenants_rows_from_raw_sql(make_tenant, make_key):
    a, b = make_tenant(), make_tenant()
    make_key(a)
    make_key(b)
    make_key(b)
    table = ApiKey._meta.db_table
    assert raw_count(table) == 0  # no tenant in scope: nothing visible
    with tenant_scope(a.id):
        assert raw_count(table) == 1
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT tenant_id FROM {table}")
            assert cursor.fetchall() == [(a.id,)]
            # an UPDATE without a WHERE on the tenant touches only the scoped tenant's rows
            cursor.execute(f"UPDATE {table} SET name = 'touched'")
            assert cursor.rowcount == 1
    with tenant_scope(b.id):
        assert raw_count(table) == 2
        assert ApiKey.objects.filter(name="touched").count() == 0
    with all_tenants_scope():
        assert raw_count(table) == 3


def test_rls_refuses_writing_a_row_for_another_tenant(make_tenant, make_key):
    a, b = make_tenant(), make_tenant()
    with tenant_scope(a.id), pytest.raises(ProgrammingError, match="row-level security"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Membership._meta.db_table} (tenant_id, user_id, role, created_at) "
                "VALUES (%s, 1, 'admin', now())", [b.id])
    with all_tenants_scope():
        assert Membership.all_tenants.count() == 0


def test_rls_setting_does_not_outlive_the_scope(make_tenant, make_key):
    a = make_tenant()
    make_key(a)
    with tenant_scope(a.id):
        assert raw_count(ApiKey._meta.db_table) == 1
    assert raw_count(ApiKey._meta.db_table) == 0


def test_every_tenant_owned_table_has_forced_rls():
    owned = [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
    assert {ApiKey, Membership} <= set(owned)
    with connection.cursor() as cursor:
        for model in owned:
            cursor.execute(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s",
                [model._meta.db_table])
            assert cursor.fetchone() == (True, True), model._meta.db_table
            cursor.execute("SELECT count(*) FROM pg_policies WHERE tablename = %s AND policyname = 'tenant_isolation'",
                           [model._meta.db_table])
            assert cursor.fetchone()[0] == 1, model._meta.db_table
