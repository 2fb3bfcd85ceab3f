"""AuditEvent is append-only (a trigger refuses UPDATE and DELETE) and row-level secured:
a tenant sees its own events; platform-wide events (tenant_id NULL) only in all_tenants_scope."""

from django.db import migrations

from tenants.rls import EnableTenantRLS

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION greentier_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (%% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS tenants_auditevent_append_only ON tenants_auditevent;
CREATE TRIGGER tenants_auditevent_append_only BEFORE UPDATE OR DELETE ON tenants_auditevent
    FOR EACH ROW EXECUTE FUNCTION greentier_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS tenants_auditevent_append_only ON tenants_auditevent;
DROP FUNCTION IF EXISTS greentier_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0005_auditevent")]

    operations = [
        EnableTenantRLS("auditevent"),
        migrations.RunPython(forwards, backwards),
    ]
