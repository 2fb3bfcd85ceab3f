"""The base API view every tenant-scoped endpoint inherits (Sentry's convert_args).

The tenant comes from the credential only, never from the body or URL. Handlers
receive it as a keyword argument and run inside `tenant_scope`, so the ORM and
PostgreSQL row-level security both see it, and an error rolls back every write.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.views import APIView

from tenants.authentication import ApiKeyAuthentication
from tenants.scope import tenant_scope


class TenantAPIView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    required_scope: str | None = None  # one of tenants.models.Scope
    # Query parameters a view understands; anything else is a 400 (a typo should not be
    # silently ignored, e.g. ?granulatity=hour).
    query_params: frozenset[str] = frozenset()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        unknown = sorted(set(request.query_params) - self.query_params)
        if unknown:
            accepted = ", ".join(sorted(self.query_params)) or "none"
            raise exceptions.ValidationError({"query": [f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
                                                        f"accepted: {accepted}"]})

    def check_permissions(self, request):
        if request.auth is None:
            raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <api key>'.")
        if self.required_scope and self.required_scope not in request.auth.scopes:
            raise exceptions.PermissionDenied(f"This API key lacks the '{self.required_scope}' scope.")

    def dispatch(self, request, *args, **kwargs):
        # APIView.dispatch, with the handler run in the tenant's scope and given the tenant.
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                handler = self.http_method_not_allowed
                response = handler(request, *args, **kwargs)
            else:
                tenant = request.auth.tenant
                with tenant_scope(tenant.id):
                    response = handler(request, *args, tenant=tenant, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response
