from celery import shared_task

from tenants.models import ApiKey, Tenant
from tenants.scope import tenant_scope


@shared_task(name="tenants.ping")
def tenant_ping(tenant_id: int) -> dict:
    """Smoke task: proves a worker reaches the database and applies the tenant scope."""
    tenant = Tenant.objects.get(id=tenant_id)
    with tenant_scope(tenant.id):
        return {"tenant": tenant.slug, "api_keys": ApiKey.objects.count()}
