from tenants.scope import admin_all_tenants_scope


class AdminAllTenantsMiddleware:
    """The Django admin is staff's cross-tenant tool: its requests run in all_tenants_scope,
    so row-level security shows staff every tenant's rows (the admin itself checks is_staff)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/admin/"):
            with admin_all_tenants_scope():
                return self.get_response(request)
        return self.get_response(request)
