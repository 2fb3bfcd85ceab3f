from django.urls import path

from tenants import apis

urlpatterns = [
    path("tenant", apis.TenantApi.as_view(), name="tenant"),
    path("api-keys", apis.ApiKeyListApi.as_view(), name="api-keys"),
    path("api-keys/<int:key_id>", apis.ApiKeyDetailApi.as_view(), name="api-key-detail"),
    path("audit", apis.AuditApi.as_view(), name="audit"),
]
