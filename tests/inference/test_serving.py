"""Predict endpoint: routing, validation, exact per-request metering."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from inference import runtime
from inference.energy import power_model
from inference.metering import usage_flush
from inference.models import Mode, UsageHour
from inference.registry import artifact_path
from inference.routing import choose_variant
from tenants.scope import all_tenants_scope, tenant_scope

pytestmark = pytest.mark.django_db


def ledger(tenant=None):
    usage_flush()
    if tenant is None:
        with all_tenants_scope():
            return list(UsageHour.all_tenants.order_by("id"))
    with tenant_scope(tenant.id):
        return list(UsageHour.objects.order_by("id"))


def post(client, body, family="digits-classifier"):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.generic("POST", f"/v1/models/{family}/predict", raw, content_type="application/json")


# --- routing ------------------------------------------------------------------------------


def test_routing_picks_the_right_variant_per_mode(make_variant):
    base = make_variant(name="baseline", accuracy="0.980000", energy_per_1k_uj=10_000)
    quant = make_variant(name="int8", technique="int8-quantised", accuracy="0.975000", energy_per_1k_uj=6_000)
    pruned = make_variant(name="pruned", technique="pruned", accuracy="0.985000", energy_per_1k_uj=8_000)
    tiny = make_variant(name="tiny", technique="distilled", accuracy="0.900000", energy_per_1k_uj=1_000)
    family = base.version.family
    family.refresh_from_db()
    variants = [base, quant, pruned, tiny]
    assert choose_variant(family=family, variants=variants, mode=Mode.STANDARD) == base
    # tiny is cheapest but below the 0.95 floor; int8 is the cheapest that meets it
    assert choose_variant(family=family, variants=variants, mode=Mode.EFFICIENCY) == quant
    assert choose_variant(family=family, variants=variants, mode=Mode.ACCURATE) == pruned


def test_efficiency_with_nothing_above_the_floor_serves_the_default(make_variant):
    base = make_variant(name="baseline", accuracy="0.900000", energy_per_1k_uj=10_000, floor="0.990000")
    cheap = make_variant(name="cheap", technique="distilled", accuracy="0.800000", energy_per_1k_uj=100)
    family = base.version.family
    family.refresh_from_db()
    assert choose_variant(family=family, variants=[base, cheap], mode=Mode.EFFICIENCY) == base


# --- serving --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, expected", [("standard", "baseline"), ("efficiency", "student"),
                                            ("accurate", "baseline")])
def test_predict_serves_and_meters_exactly(mode, expected, digits_family, digits_models, make_tenant,
                                           api_client_for):
    family, baseline, student = digits_family
    X_eval, _, _ = digits_models
    tenant = make_tenant(grid_zone="GB")
    client = api_client_for(tenant, scopes=["predict"])
    rows = X_eval[:7]
    response = post(client, {"inputs": rows.tolist(), "mode": mode})
    assert response.status_code == 200, response.content
    body = response.json()
    variant = baseline if expected == "baseline" else student
    direct = runtime.load(artifact_path(variant.artifact)).predict(rows.astype(np.float32)).tolist()
    assert body["predictions"] == direct
    assert body["model"]["variant"] == expected
    assert body["mode"] == mode
    usage = body["usage"]
    assert usage["energy_uj"] == power_model().energy_uj(usage["cpu_us"])
    assert usage["co2e_ug"] == usage["operational_co2e_ug"] + usage["embodied_co2e_ug"]
    assert usage["energy_j"] == usage["energy_uj"] / 1e6

    [row] = ledger(tenant)
    assert (row.variant_id, row.mode, row.source) == (variant.id, mode, "online")
    assert (row.predictions, row.requests) == (7, 1)
    assert row.energy_uj == usage["energy_uj"]
    assert row.cpu_us == usage["cpu_us"]
    assert row.co2e_ug == usage["operational_co2e_ug"]
    assert row.embodied_co2e_ug == usage["embodied_co2e_ug"]
    assert row.energy_method == power_model().method
    assert row.hour.minute == 0 and row.hour.second == 0


def test_many_requests_add_up_in_one_bucket(digits_family, digits_models, make_tenant, api_client_for):
    X_eval, _, _ = digits_models
    tenant = make_tenant()
    client = api_client_for(tenant)
    sent, energy = 0, 0
    for n in (1, 5, 32, 3):
        body = post(client, {"inputs": X_eval[:n].tolist()}).json()
        sent += n
        energy += body["usage"]["energy_uj"]
    [row] = ledger(tenant)
    assert (row.predictions, row.requests, row.energy_uj) == (sent, 4, energy)


def test_loading_a_model_session_is_not_charged_to_the_request(digits_family, digits_models, make_tenant,
                                                                api_client_for, monkeypatch):
    X_eval, _, _ = digits_models
    client = api_client_for(make_tenant())
    body = {"inputs": X_eval[:1].tolist()}
    post(client, body)  # warm: Django, caches, session
    warm = post(client, body).json()["usage"]["cpu_us"]
    real_load = runtime.load

    def slow_load(*args, **kwargs):  # a load costing a known, large amount of CPU
        deadline = time.thread_time() + 0.2
        while time.thread_time() < deadline:
            pass
        return real_load(*args, **kwargs)

    monkeypatch.setattr(runtime, "load", slow_load)
    runtime._cache.clear()
    cold = post(client, body).json()["usage"]["cpu_us"]
    assert cold < warm + 100_000  # the 200 ms of loading are not in the charge


BAD_INPUTS = [
    ({"inputs": []}, 400, "empty_batch"),
    ({"inputs": [[1.0] * 63]}, 400, "invalid_shape"),
    ({"inputs": [[1.0] * 64, [1.0] * 65]}, 400, "invalid_shape"),
    ({"inputs": [1.0] * 64}, 400, "invalid_shape"),
    ({"inputs": [["a"] * 64]}, 400, "invalid_type"),
    ({"inputs": [[True] + [1.0] * 63]}, 400, "invalid_type"),
    ({"inputs": [[None] + [1.0] * 63]}, 400, "invalid_type"),
    ({"inputs": [[1e300] + [1.0] * 63]}, 400, "invalid_value"),
    ({"inputs": "nope"}, 400, "invalid_input"),
    ({"rows": [[1.0] * 64]}, 400, "invalid_input"),
    ({"inputs": [[1.0] * 64], "mode": "turbo"}, 400, "invalid_mode"),
    ({"inputs": [[1.0] * 64] * 1001}, 400, "batch_too_large"),
    ([[1.0] * 64], 400, "invalid_input"),
    (b'{"inputs": [[NaN' + b", 1.0" * 63 + b"]]}", 400, "malformed_request"),
    (b'{"inputs": [[1e999' + b", 1.0" * 63 + b"]]}", 400, "malformed_request"),
    (b'{"inputs": [[1.0,', 400, "malformed_request"),
]


@pytest.mark.parametrize("body, status, code", BAD_INPUTS)
def test_bad_inputs_are_4xx_and_meter_nothing(body, status, code, digits_family, make_tenant, api_client_for):
    tenant = make_tenant()
    client = api_client_for(tenant)
    response = post(client, body)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert ledger() == []


def test_unknown_family_is_404_and_meters_nothing(digits_family, make_tenant, api_client_for):
    client = api_client_for(make_tenant())
    response = post(client, {"inputs": [[0.0] * 64]}, family="no-such-model")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert ledger() == []


def test_predict_auth_scope_and_content_type(digits_family, make_tenant, api_client_for):
    from rest_framework.test import APIClient

    tenant = make_tenant()
    body = {"inputs": [[0.0] * 64]}
    assert post(APIClient(), body).status_code == 401
    anon = APIClient()
    anon.credentials(HTTP_AUTHORIZATION="Bearer gt_live_nope")
    assert post(anon, body).json()["code"] == "authentication_failed"
    usage_only = api_client_for(tenant, scopes=["usage"])
    assert post(usage_only, body).status_code == 403
    client = api_client_for(tenant)
    wrong_type = client.generic("POST", "/v1/models/digits-classifier/predict", "inputs=1",
                                content_type="text/plain")
    assert wrong_type.status_code == 415
    assert client.get("/v1/models/digits-classifier/predict").status_code == 405
    assert ledger() == []


def test_models_api_lists_variants_with_metadata(digits_family, make_tenant, api_client_for):
    family, baseline, student = digits_family
    client = api_client_for(make_tenant())
    listing = client.get("/v1/models").json()
    assert listing == [{"name": "digits-classifier", "description": "", "task": "classification",
                        "accuracy_floor": "0.900000", "default_variant": "baseline"}]
    detail = client.get("/v1/models/digits-classifier").json()
    assert [v["name"] for v in detail["variants"]] == ["baseline", "student"]
    assert detail["routes"] == {"standard": "baseline", "efficiency": "student", "accurate": "baseline"}
    student_json = detail["variants"][1]
    assert student_json["parent"] == "baseline"
    assert student_json["energy_per_1k_predictions_j"] == 2.0
    assert student_json["sha256"] == student.artifact.sha256
    assert student_json["dataset"]["train_rows"] == 1400
    # accuracy per kWh = 0.95 / (2 J / 3.6e6 J/kWh) = 1,710,000
    assert student_json["accuracy_per_kwh"] == "1710000"
    assert client.get("/v1/models/unknown").status_code == 404


def test_artifacts_are_deduplicated_by_hash(digits_models):
    from inference.models import ModelArtifact
    from inference.registry import artifact_store

    _, _, blobs = digits_models
    first = artifact_store(content=blobs["baseline"])
    again = artifact_store(content=blobs["baseline"])
    other = artifact_store(content=blobs["distilled"])
    assert first.id == again.id
    assert other.id != first.id
    assert ModelArtifact.objects.count() == 2
    assert artifact_path(first).read_bytes() == blobs["baseline"]
