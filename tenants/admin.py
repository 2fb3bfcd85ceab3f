from django.contrib import admin

from tenants.models import ApiKey, Membership, Tenant


class AllTenantsAdmin(admin.ModelAdmin):
    """Staff see every tenant's rows: the admin is a cross-tenant tool by design."""

    def get_queryset(self, request):
        return self.model.all_tenants.get_queryset()


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "tier", "grid_zone", "currency", "created_at"]
    search_fields = ["slug", "name"]
    list_filter = ["tier", "grid_zone"]


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
