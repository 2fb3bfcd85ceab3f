"""PostgreSQL row-level security for tenant-owned tables.

Every table of a TenantOwnedModel gets ENABLE + FORCE ROW LEVEL SECURITY and one
policy: a row is visible and writable only when its tenant_id equals the
transaction-local setting `app.tenant_id`, or when `app.all_tenants` is 'on' (set
only by tenants.scope.all_tenants_scope). With neither set, nothing is visible.

Superusers and roles with BYPASSRLS skip every policy, so the application must
connect as an ordinary role (docs/operations.md). On SQLite these operations do nothing.
"""

from __future__ import annotations

from django.db import migrations

POLICY = "tenant_isolation"
PREDICATE = (
    "(current_setting('app.all_tenants', true) = 'on' "
    "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)"
)


class EnableTenantRLS(migrations.operations.base.Operation):
    """Migration operation: turn on row-level security for one tenant-owned model."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str):
        self.model_name = model_name

    def state_forwards(self, app_label, state):
        pass

    def _table(self, app_label, state):
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, to_state))
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        schema_editor.execute(f"CREATE POLICY {POLICY} ON {table} USING {PREDICATE} WITH CHECK {PREDICATE}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self._table(app_label, from_state))
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Enable row-level security on {self.model_name}"

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.model_name], {})

    @property
    def migration_name_fragment(self):
        return f"rls_{self.model_name.lower()}"
