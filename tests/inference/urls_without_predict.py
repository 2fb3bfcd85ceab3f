"""A URLconf that does not route the predict path (tests/inference/test_fastpath.py)."""

from django.urls import path

from config import health

urlpatterns = [path("healthz", health.healthz)]
