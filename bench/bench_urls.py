"""URLs for bench/serving.py: the product's URLs plus a plain DRF predict endpoint.

The plain endpoint is what a straightforward DRF implementation looks like: an APIView
with the same API-key authentication, the DRF parser/renderer stack, the same
validation and the same onnxruntime call, and no metering.
"""

from django.urls import path
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product_urls
from inference import runtime
from inference.routing import routes_for
from inference.serving import PredictError, _validate_payload, validate_rows
from tenants.authentication import ApiKeyAuthentication


class HasApiKey(BasePermission):
    def has_permission(self, request, view):
        return request.auth is not None and "predict" in request.auth.scopes


class PlainDrfPredict(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]

    def post(self, request, family):
        try:
            inputs, mode = _validate_payload(request.data)
            route = routes_for(family_name=family)[mode]
            rows = validate_rows(inputs, n_features=route.n_features, raw_has_literals=False)
        except PredictError as exc:
            return Response({"code": exc.code, "detail": exc.detail}, status=exc.status)
        labels = runtime.cached(route.path, sha256=route.sha256).predict(rows)
        return Response({"predictions": labels.tolist(), "model": {"variant": route.variant_name}, "mode": mode})


# First, like the product's predict route, so both pay the same URL resolution.
urlpatterns = [path("bench/plain-drf/<slug:family>/predict", PlainDrfPredict.as_view()), *product_urls]
