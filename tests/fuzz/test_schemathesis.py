"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis).

Every operation, authenticated as a tenant with every scope, against the real app on
PostgreSQL with all of schemathesis' checks, plus ours: no response may carry another
tenant's data. FUZZ_EXAMPLES sets examples per operation (25 in CI; bench/suite.py
runs 200).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import CHECKS, load_all_checks

from config.wsgi import application

load_all_checks()
# Operations whose validity depends on content a schema cannot express (the rows of an
# uploaded CSV, the weights of an ONNX file, a deadline relative to now, a limit above
# this month's usage, a model family that exists): a schema-valid request may rightly
# get a 400 there, so "positive data acceptance" is not asked of them. Every other
# check, and our own, still runs on them.
CONTENT_VALIDATED = {
    ("POST", "/v1/batches"), ("POST", "/v1/models/{family}/candidates"), ("POST", "/v1/budgets"),
    ("POST", "/v1/budgets/{budget_id}/sign-off"), ("POST", "/v1/models/{family}/predict"),
    ("GET", "/v1/usage"),  # a real calendar date, start before end, at most 93 days hourly
    ("POST", "/v1/reports"),  # a period that has ended, for a report kind that takes it
}
CHECKS_ALL = CHECKS.get_all()
# 25 per operation in every CI run (about a minute); bench/suite.py runs 200.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_test_connection():
    """The WSGI app closes the database connection at the end of each request (as in
    production); the test's transaction lives on that connection, so, like Django's
    test client, keep it open while fuzzing."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(db, keep_test_connection, make_tenant, make_key, make_variant, add_usage):
    """Tenant A (the fuzzer) and tenant B, whose data must never show up in A's answers."""
    from datetime import UTC, datetime

    tenant_a = make_tenant(slug="fuzzer-a")
    tenant_b = make_tenant(slug="secret-b", name="Secret B Ltd")
    key_a = make_key(tenant_a)
    key_b = make_key(tenant_b)
    variant = make_variant(name="fuzz-variant")
    add_usage(tenant_b, variant, datetime(2026, 11, 1, tzinfo=UTC), predictions=987_654_321)
    return {"headers": {"Authorization": f"Bearer {key_a.raw_key}"},
            "secrets": ["secret-b", "Secret B Ltd", key_b.api_key.prefix, "987654321"]}


def no_cross_tenant_data(secrets):
    def check(ctx, response, case):
        body = response.content.decode("utf-8", errors="replace")
        leaked = [s for s in secrets if s in body]
        if leaked:
            raise AssertionError(f"response carries another tenant's data: {leaked}")
    return check


def json_errors(ctx, response, case):
    content_type = next((v for k, v in response.headers.items() if k.lower() == "content-type"), [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if response.status_code >= 400 and not content_type.startswith("application/json"):
        raise AssertionError(f"{response.status_code} error is not JSON: {content_type!r}")


@schema.parametrize()
@hsettings(max_examples=EXAMPLES, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_fuzz(case, fuzz_world):
    response = case.call(headers=fuzz_world["headers"])
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}"
    checks = CHECKS_ALL
    if (case.method.upper(), case.path) in CONTENT_VALIDATED:
        checks = [c for c in CHECKS_ALL if c.__name__ != "positive_data_acceptance"]
    case.validate_response(response, checks=checks, headers=fuzz_world["headers"],
                           additional_checks=[no_cross_tenant_data(fuzz_world["secrets"]), json_errors])
