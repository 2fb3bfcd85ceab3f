from django.contrib import admin

from tenants.models import ApiKey, AuditEvent, Membership, Tenant, TierChange
from tenants.services import audit_record, tenant_change_tier


def _snapshot(obj) -> dict:
    """A JSON-safe dict of a model instance's fields, for audit before/after values."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder
    from django.forms.models import model_to_dict

    return json.loads(json.dumps(model_to_dict(obj), cls=DjangoJSONEncoder))


class AuditedAdminMixin:
    """Staff edits through the admin are audited (who, before, after). `audit_action`
    names the change, e.g. "price.update"; `audit_tenant(obj)` is None for platform-wide rows."""

    audit_action = "admin.change"

    def audit_tenant(self, obj):
        return getattr(obj, "tenant", None)

    def save_model(self, request, obj, form, change):
        before = _snapshot(type(obj).all_tenants.get(pk=obj.pk) if hasattr(type(obj), "all_tenants")
                           else type(obj)._default_manager.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        audit_record(actor=request.user.get_username(), action=self.audit_action, target_type=obj._meta.model_name,
                     target_id=obj.pk, tenant=self.audit_tenant(obj), before=before, after=_snapshot(obj))

    def delete_model(self, request, obj):
        before, pk, tenant = _snapshot(obj), obj.pk, self.audit_tenant(obj)
        super().delete_model(request, obj)
        audit_record(actor=request.user.get_username(), action=self.audit_action, target_type=obj._meta.model_name,
                     target_id=pk, tenant=tenant, before=before, after=None)


class AllTenantsAdmin(admin.ModelAdmin):
    """Staff see every tenant's rows: the admin is a cross-tenant tool by design."""

    def get_queryset(self, request):
        return self.model.all_tenants.get_queryset()


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "tier", "grid_zone", "currency", "created_at"]
    search_fields = ["slug", "name"]
    list_filter = ["tier", "grid_zone"]

    def save_model(self, request, obj, form, change):
        """A tier edited here goes through tenant_change_tier: recorded, prorated, audited."""
        new_tier = obj.tier
        if change and "tier" in form.changed_data:
            obj.tier = form.initial["tier"]
            super().save_model(request, obj, form, change)
            tenant_change_tier(tenant=obj, tier=new_tier, changed_by=request.user.get_username())
        else:
            super().save_model(request, obj, form, change)


@admin.register(Membership)
class MembershipAdmin(AllTenantsAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]


@admin.register(ApiKey)
class ApiKeyAdmin(AllTenantsAdmin):
    list_display = ["prefix", "tenant", "name", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "lookup_id", "secret_sha256", "created_at", "last_used_at"]
    list_filter = ["revoked_at"]

    def has_add_permission(self, request):
        return False  # keys are created by create_api_key or the API so the secret is shown once


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: audit events are append-only."""

    list_display = ["created_at", "tenant", "actor", "action", "target_type", "target_id"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor", "target_id", "tenant__slug"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TierChange)
class TierChangeAdmin(AllTenantsAdmin):
    list_display = ["effective_at", "tenant", "from_tier", "to_tier", "changed_by"]
    readonly_fields = ["tenant", "from_tier", "to_tier", "effective_at", "changed_by"]

    def has_add_permission(self, request):
        return False  # tier changes go through tenant_change_tier (recorded and audited)
