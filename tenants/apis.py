from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from config.errors import ApiError
from config.fields import StrictCharField, StrictChoiceField
from tenants.models import ApiKey, Scope
from tenants.selectors import api_key_list, audit_events
from tenants.services import TenantError, api_key_create, api_key_revoke
from tenants.views import TenantAPIView


class TenantOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()
    grid_zone = serializers.CharField()
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()


class TenantApi(TenantAPIView):
    @extend_schema(responses=inline_serializer("WhoAmI", {
        "tenant": TenantOutput(), "key_prefix": serializers.CharField(), "scopes": serializers.ListField(
            child=serializers.CharField())}))
    def get(self, request, *, tenant):
        return Response({
            "tenant": TenantOutput(tenant).data,
            "key_prefix": request.auth.prefix,
            "scopes": request.auth.scopes,
        })


class ApiKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    prefix = serializers.CharField()
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreated(ApiKeyOutput):
    key = serializers.CharField(help_text="The full key. Shown once; store it now.")


class ApiKeyInput(serializers.Serializer):
    name = StrictCharField(max_length=100, required=False, default="", allow_blank=True)
    scopes = serializers.ListField(
        child=StrictChoiceField(choices=Scope.values), required=False, allow_empty=False, min_length=1,
        help_text="Defaults to every scope.",
    )


class ApiKeyListApi(TenantAPIView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=ApiKeyOutput(many=True))
    def get(self, request, *, tenant):
        return Response(ApiKeyOutput(api_key_list(tenant=tenant), many=True).data)

    @extend_schema(request=ApiKeyInput, responses={201: ApiKeyCreated})
    def post(self, request, *, tenant):
        data = ApiKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            created = api_key_create(
                tenant=tenant, scopes=data.validated_data.get("scopes"), name=data.validated_data["name"],
                created_by=f"api:{request.auth.prefix}",
            )
        except TenantError as exc:
            raise ApiError(str(exc), code="invalid_request") from None
        body = ApiKeyOutput(created.api_key).data | {"key": created.raw_key}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(TenantAPIView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=ApiKeyOutput)
    def delete(self, request, key_id: int, *, tenant):
        try:
            api_key = api_key_revoke(tenant=tenant, key_id=key_id, revoked_by=f"api:{request.auth.prefix}")
        except ApiKey.DoesNotExist:
            raise NotFound("No such API key.") from None
        return Response(ApiKeyOutput(api_key).data)


class AuditEventOutput(serializers.Serializer):
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class AuditApi(TenantAPIView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=AuditEventOutput(many=True), summary="Who changed what in your account (newest first)")
    def get(self, request, *, tenant):
        return Response(AuditEventOutput(audit_events(tenant=tenant), many=True).data)
