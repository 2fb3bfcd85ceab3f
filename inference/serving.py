"""Serving one prediction request: validate, run, meter. Called by the lean predict view.

Everything here raises PredictError (a 4xx with a stable code) for bad input, before
anything is metered: a request that fails validation leaves no usage behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings

from carbon import units
from inference import runtime
from inference.budgets import budget_blocks
from inference.emissions import intensity_for_hour, request_emissions
from inference.energy import power_model, thread_cpu_us
from inference.metering import UsageRecord, hour_of, meter
from inference.models import Mode, Source
from config.observability import energy_child, predictions_child
from inference.routing import Route, UnknownFamily, routes_for


class PredictError(Exception):
    def __init__(self, detail: str, *, code: str = "invalid_input", status: int = 400):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status


@dataclass(frozen=True)
class PredictResult:
    predictions: list[int]
    route: Route
    mode: str
    energy_uj: int
    co2e_ug: int  # operational
    embodied_co2e_ug: int
    cpu_us: int
    inference_cpu_us: int
    intensity_g_per_kwh: Decimal
    intensity_source: str

    def as_json(self) -> dict:
        total_ug = self.co2e_ug + self.embodied_co2e_ug
        return {
            "predictions": self.predictions,
            "model": {"family": self.route.family, "variant": self.route.variant_name,
                      "technique": self.route.technique, "accuracy": float(self.route.accuracy)},
            "mode": self.mode,
            "usage": {
                "energy_j": float(units.uj_to_j(self.energy_uj)),
                "energy_uj": self.energy_uj,
                "co2e_mg": float(units.ug_to_mg(total_ug)),
                "co2e_ug": total_ug,
                "operational_co2e_ug": self.co2e_ug,
                "embodied_co2e_ug": self.embodied_co2e_ug,
                "cpu_us": self.cpu_us,
                "grid_intensity_g_per_kwh": float(self.intensity_g_per_kwh),
                "grid_intensity_source": self.intensity_source,
            },
        }


_MODES = tuple(Mode.values)  # Mode.values builds a new list on every access


def _validate_payload(payload) -> tuple[list, str]:
    if not isinstance(payload, dict):
        raise PredictError("Body must be a JSON object with 'inputs' (and optionally 'mode').")
    unknown = set(payload) - {"inputs", "mode"}
    if unknown:
        raise PredictError(f"Unknown field(s): {', '.join(sorted(unknown))}. Send 'inputs' and 'mode'.")
    mode = payload.get("mode", Mode.STANDARD)
    if mode not in _MODES:
        raise PredictError(f"mode must be one of {', '.join(_MODES)}, not {str(mode)[:40]!r}.",
                           code="invalid_mode")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list):
        raise PredictError("inputs must be a list of rows, each a list of numbers.")
    return inputs, mode


def validate_rows(inputs: list, *, n_features: int, raw_has_literals: bool) -> np.ndarray:
    """A float32 (rows, n_features) array, or PredictError saying what is wrong."""
    if not inputs:
        raise PredictError("inputs is empty; send at least one row.", code="empty_batch")
    if len(inputs) > settings.PREDICT_MAX_ROWS:
        raise PredictError(f"inputs has {len(inputs)} rows; at most {settings.PREDICT_MAX_ROWS} per request "
                           "(use /v1/batches for more).", code="batch_too_large")
    for i, row in enumerate(inputs):
        if not isinstance(row, list):
            raise PredictError(f"inputs[{i}] must be a list of {n_features} numbers.", code="invalid_shape")
        if len(row) != n_features:
            raise PredictError(f"inputs[{i}] has {len(row)} values; the model takes {n_features}.",
                               code="invalid_shape")
    if raw_has_literals:  # true/false/null somewhere in the body: check types exactly (slow path)
        for i, row in enumerate(inputs):
            for j, value in enumerate(row):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise PredictError(f"inputs[{i}][{j}] must be a number, not {type(value).__name__}.",
                                       code="invalid_type")
    try:
        array = np.array(inputs)
    except (ValueError, OverflowError):
        raise PredictError("inputs must contain numbers only.", code="invalid_type") from None
    if array.dtype.kind not in "iuf":
        bad = next((v for row in inputs for v in row if isinstance(v, bool) or not isinstance(v, (int, float))), None)
        raise PredictError(f"inputs must contain numbers only; found {type(bad).__name__}.", code="invalid_type")
    with np.errstate(over="ignore"):  # out-of-range values become inf and are refused below
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise PredictError("inputs contain a value out of float32 range.", code="invalid_value")
    return array


def predict(*, family: str, payload, raw_body: bytes, tenant_id: int, grid_zone: str,
            request_cpu_start_us: int, metered: bool = True) -> PredictResult:
    """Serve one request. Raises PredictError (4xx) before metering anything."""
    inputs, mode = _validate_payload(payload)
    try:
        route = routes_for(family_name=family)[mode]
    except UnknownFamily:
        raise PredictError(f"No model family {family!r}; GET /v1/models lists them.", code="not_found",
                           status=404) from None
    if budget_blocks(tenant_id=tenant_id, family_id=route.family_id):
        raise PredictError("Your monthly energy budget is used up and enforced; a tenant admin can sign off a "
                           "higher limit (POST /v1/budgets/{id}/sign-off).", code="energy_budget_exceeded",
                           status=429)
    raw_has_literals = b"true" in raw_body or b"false" in raw_body or b"null" in raw_body
    rows = validate_rows(inputs, n_features=route.n_features, raw_has_literals=raw_has_literals)

    # A worker's first request for a model loads its session (tens of ms): a cost of the
    # process, not of this request, so it is not charged.
    t_load = thread_cpu_us()
    model = runtime.cached(route.path, sha256=route.sha256)
    t0 = thread_cpu_us()
    load_cpu_us = t0 - t_load
    labels = model.predict(rows)
    inference_cpu_us = thread_cpu_us() - t0
    predictions = labels.tolist()

    hour = hour_of(time.time())
    g_per_kwh, source = intensity_for_hour(zone=grid_zone, hour=hour)
    # Whole-request CPU time: from the start of the request (config/fastpath.py or the
    # outermost middleware) to here; rendering the response after this is a few
    # microseconds and is not charged.
    cpu_us = max(thread_cpu_us() - request_cpu_start_us - load_cpu_us, inference_cpu_us)
    energy_uj = power_model().energy_uj(cpu_us)
    co2e, embodied = request_emissions(energy_uj=energy_uj, cpu_us=cpu_us, g_per_kwh=g_per_kwh)
    if metered:
        meter().record(UsageRecord(
            tenant_id=tenant_id, hour=hour, variant_id=route.variant_id, mode=mode, source=Source.ONLINE,
            predictions=len(predictions), requests=1, cpu_us=cpu_us, inference_cpu_us=inference_cpu_us,
            energy_uj=energy_uj, co2e_ug=co2e, embodied_co2e_ug=embodied,
            intensity_g_per_kwh=str(g_per_kwh), intensity_source=source,
        ))
        predictions_child(mode, Source.ONLINE).inc(len(predictions))
        energy_child(Source.ONLINE).inc(energy_uj / 1_000_000)
    return PredictResult(predictions=predictions, route=route, mode=mode, energy_uj=energy_uj, co2e_ug=co2e,
                         embodied_co2e_ug=embodied, cpu_us=cpu_us, inference_cpu_us=inference_cpu_us,
                         intensity_g_per_kwh=g_per_kwh, intensity_source=source)

