from __future__ import annotations

import csv
from decimal import Decimal
import io
import json
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from carbon import units
from config.errors import ApiError, json_error
from config.fields import StrictBooleanField, StrictCharField, StrictDecimalField, StrictIntegerField
from config.parsers import loads_strict
from inference import registry
from inference.energy_gate import GateError, energy_check, statement_markdown
from inference.idempotency import IdempotencyError, idempotency_claim, idempotency_complete, idempotency_release
from inference.batches import BatchError, batch_job_submit, batch_result_frame
from inference.models import BatchJob, Mode
from inference.routing import UnknownFamily
from inference.selectors import batch_job_get, batch_job_list
from inference.serving import PredictError, predict
from inference.usage import UsageQueryError, usage_report
from tenants.models import Scope
from tenants.selectors import api_key_authenticate
from tenants.views import TenantAPIView

# --- model registry -------------------------------------------------------------------


class VariantOutput(serializers.Serializer):
    name = serializers.CharField()
    technique = serializers.CharField()
    parent = serializers.CharField(source="parent.name", allow_null=True, default=None)
    version = serializers.IntegerField(source="version.version")
    sha256 = serializers.CharField(source="artifact.sha256")
    size_bytes = serializers.IntegerField(source="artifact.size_bytes")
    parameters = serializers.IntegerField()
    input_schema = serializers.JSONField()
    output_schema = serializers.JSONField()
    accuracy = serializers.DecimalField(max_digits=7, decimal_places=6)
    accuracy_metric = serializers.CharField()
    energy_per_1k_predictions_j = serializers.SerializerMethodField()
    energy_per_1k_uj = serializers.IntegerField()
    energy_method = serializers.CharField()
    profile_batch_size = serializers.IntegerField()
    latency_p50_us = serializers.IntegerField()
    latency_p95_us = serializers.IntegerField()
    accuracy_per_kwh = serializers.DecimalField(max_digits=20, decimal_places=0, allow_null=True)
    training_energy_kwh = serializers.SerializerMethodField()
    training_co2e_g = serializers.SerializerMethodField()
    training_method = serializers.CharField()
    dataset = serializers.SerializerMethodField()

    def get_energy_per_1k_predictions_j(self, variant) -> float:
        return float(units.uj_to_j(variant.energy_per_1k_uj))

    def get_training_energy_kwh(self, variant) -> float:
        return float(units.uj_to_kwh(variant.training_energy_uj))

    def get_training_co2e_g(self, variant) -> float:
        return float(units.ug_to_g(variant.training_co2e_ug))

    @extend_schema_field(inline_serializer("Dataset", {
        "name": serializers.CharField(), "version": serializers.CharField(), "sha256": serializers.CharField(),
        "train_rows": serializers.IntegerField(), "eval_rows": serializers.IntegerField()}))
    def get_dataset(self, variant) -> dict:
        v = variant.version
        return {"name": v.dataset_name, "version": v.dataset_version, "sha256": v.dataset_sha256,
                "train_rows": v.train_rows, "eval_rows": v.eval_rows}


class FamilyOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    task = serializers.CharField()
    accuracy_floor = serializers.DecimalField(max_digits=7, decimal_places=6)
    default_variant = serializers.CharField(source="default_variant.name", allow_null=True, default=None)


class FamilyDetailOutput(FamilyOutput):
    variants = serializers.SerializerMethodField()
    routes = serializers.SerializerMethodField()

    @extend_schema_field(VariantOutput(many=True))
    def get_variants(self, family):
        return VariantOutput(self.context["variants"], many=True).data

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_routes(self, family) -> dict:
        from inference.routing import choose_variant

        variants = self.context["variants"]
        if not variants:
            return {}
        return {mode: choose_variant(family=family, variants=variants, mode=mode).name for mode in Mode.values}


class ModelListApi(TenantAPIView):
    @extend_schema(responses=FamilyOutput(many=True), summary="List model families")
    def get(self, request, *, tenant):
        return Response(FamilyOutput(registry.family_list(), many=True).data)


class ModelDetailApi(TenantAPIView):
    @extend_schema(responses=FamilyDetailOutput, summary="A family's variants with energy and accuracy metadata")
    def get(self, request, family: str, *, tenant):
        found = registry.family_get(name=family)
        if found is None:
            raise NotFound(f"No model family {family!r}.")
        variants = registry.family_variants(family=found)
        return Response(FamilyDetailOutput(found, context={"variants": variants}).data)


# --- prediction (hot path) --------------------------------------------------------------


class PredictInput(serializers.Serializer):
    inputs = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                   help_text="Rows of features; the digits models take 64 values (0-16) per row.")
    mode = serializers.ChoiceField(choices=Mode.choices, default=Mode.STANDARD)


class PredictUsage(serializers.Serializer):
    energy_j = serializers.FloatField()
    energy_uj = serializers.IntegerField()
    co2e_mg = serializers.FloatField()
    co2e_ug = serializers.IntegerField()
    operational_co2e_ug = serializers.IntegerField()
    embodied_co2e_ug = serializers.IntegerField()
    cpu_us = serializers.IntegerField()
    grid_intensity_g_per_kwh = serializers.FloatField()
    grid_intensity_source = serializers.CharField()


class PredictOutput(serializers.Serializer):
    predictions = serializers.ListField(child=serializers.IntegerField())
    model = inline_serializer("PredictModel", {
        "family": serializers.CharField(), "variant": serializers.CharField(),
        "technique": serializers.CharField(), "accuracy": serializers.FloatField()})
    mode = serializers.CharField()
    usage = PredictUsage()


class ErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class PredictApi(TenantAPIView):
    """POST /v1/models/{family}/predict.

    Documented like every other DRF view, but served by `predict_view`, a plain Django
    view: DRF's request, negotiation and rendering machinery is most of a small model's
    request CPU (bench/serving.py measures it). Same key auth, scopes and error shape.
    """

    required_scope = Scope.PREDICT

    @extend_schema(request=PredictInput, responses={200: PredictOutput, 400: ErrorOutput, 401: ErrorOutput,
                                                   403: ErrorOutput, 404: ErrorOutput, 413: ErrorOutput,
                                                   415: ErrorOutput},
                   summary="Predict with a model family, metered per request")
    def post(self, request, family: str, *, tenant):  # pragma: no cover - served by predict_view
        raise NotImplementedError

    @classmethod
    def as_view(cls, **initkwargs):
        view = csrf_exempt(predict_view)
        view.cls = cls  # drf-spectacular documents the route from the class
        view.initkwargs = initkwargs
        return view


def predict_view(request, family: str):
    if request.method != "POST":
        response = json_error("method_not_allowed", f'Method "{request.method}" not allowed.', 405)
        response["Allow"] = "POST"
        return response
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        response = json_error("not_authenticated", "Send 'Authorization: Bearer <api key>'.", 401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    parts = header.split()
    api_key = api_key_authenticate(raw_key=parts[1]) if len(parts) == 2 and parts[0] == "Bearer" else None
    if api_key is None:
        return json_error("authentication_failed", "API key is invalid or revoked.", 401)
    if Scope.PREDICT not in api_key.scopes:
        return json_error("permission_denied", "This API key lacks the 'predict' scope.", 403)
    if request.GET:
        return json_error("invalid_request", "This endpoint takes no query parameters.", 400)
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip()
    if content_type != "application/json":
        return json_error("unsupported_media_type", f'Unsupported media type "{content_type}" in request; '
                          "send application/json.", 415)
    try:
        raw = request.body
    except RequestDataTooBig:  # a chunked body (no Content-Length) over the limit
        return json_error("payload_too_large", "Request body is larger than the limit "
                          f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes).", 413)
    try:
        payload = loads_strict(raw, max_depth=settings.API_MAX_JSON_DEPTH) if raw else None
    except Exception as exc:  # ParseError from the strict parser
        return json_error("malformed_request", str(getattr(exc, "detail", exc)), 400)
    metered = not (settings.METERING_BENCH_TOGGLE and request.META.get("HTTP_X_BENCH_UNMETERED") == "1")
    claim = None
    idempotency_key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if idempotency_key is not None:
        try:
            claim = idempotency_claim(tenant_id=api_key.tenant_id, key=idempotency_key, family=family, body=raw)
        except IdempotencyError as exc:
            return json_error(exc.code, exc.detail, exc.status)
        if claim.replay is not None:
            response = HttpResponse(claim.replay, content_type="application/json")
            response["Idempotent-Replayed"] = "true"
            return response
    try:
        result = predict(family=family, payload=payload, raw_body=raw, tenant_id=api_key.tenant_id,
                         grid_zone=api_key.tenant.grid_zone,
                         request_cpu_start_us=getattr(request, "meter_cpu_start_us", 0), metered=metered)
    except PredictError as exc:
        if claim is not None:
            idempotency_release(claim=claim)
        return json_error(exc.code, exc.detail, exc.status)
    except Exception:
        if claim is not None:
            idempotency_release(claim=claim)
        raise
    # Plain json.dumps: the body holds only str/int/float/list/dict, and JsonResponse's
    # DjangoJSONEncoder costs ~12 us per request more.
    response = HttpResponse(json.dumps(result.as_json()), content_type="application/json")
    if claim is not None:
        idempotency_complete(claim=claim, body=response.content)
    return response


# --- usage -------------------------------------------------------------------------------


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, dict) or "rows" not in data:  # errors stay JSON-shaped
            return JSONRenderer().render(data)
        out = io.StringIO()
        rows = data["rows"]
        fields = list(rows[0].keys()) if rows else data.get("columns", [])
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode()


INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$"


class UsageApi(TenantAPIView):
    required_scope = Scope.USAGE
    query_params = frozenset({"start", "end", "granularity", "group_by"})
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        summary="Predictions, energy, CO2e and SCI for a period",
        parameters=[
            OpenApiParameter("start", str, pattern=INSTANT_PATTERN, description="ISO 8601 date or datetime with a "
                             "time zone, inclusive; default: the first day of this month"),
            OpenApiParameter("end", str, pattern=INSTANT_PATTERN,
                             description="ISO 8601 date or datetime with a time zone, exclusive; default: now"),
            OpenApiParameter("granularity", str, enum=["hour", "day", "month"], description="default day"),
            OpenApiParameter("group_by", str, description="comma-separated: model, mode, source"),
        ],
        responses={200: inline_serializer("Usage", {
            "start": serializers.DateTimeField(), "end": serializers.DateTimeField(),
            "granularity": serializers.CharField(), "group_by": serializers.ListField(),
            "totals": serializers.DictField(), "rows": serializers.ListField(child=serializers.DictField())})},
    )
    def get(self, request, *, tenant):
        try:
            report = usage_report(
                tenant=tenant, start=_parse_instant(request.query_params.get("start"), "start"),
                end=_parse_instant(request.query_params.get("end"), "end"),
                granularity=request.query_params.get("granularity", "day"),
                group_by=[g for g in request.query_params.get("group_by", "").split(",") if g],
            )
        except UsageQueryError as exc:
            raise ApiError(str(exc), code="invalid_query") from None
        return Response(report)


def _parse_instant(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        day = parse_date(value) if len(value) == 10 else None
        parsed = parse_datetime(value) if day is None else None
    except ValueError:  # well-formed but impossible, e.g. 2026-13-45
        day = parsed = None
    if parsed is None:
        if day is None:
            raise ApiError(f"{name} must be an ISO 8601 date or datetime, e.g. 2026-11-01 or "
                           "2026-11-01T00:00:00Z.", code="invalid_query")
        parsed = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if parsed.tzinfo is None:
        raise ApiError(f"{name} must carry a time zone (e.g. Z) or be a plain date.", code="invalid_query")
    return parsed



# --- batch jobs ----------------------------------------------------------------------------


class BatchOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    model = serializers.SerializerMethodField()
    mode = serializers.CharField()
    tier = serializers.CharField()
    submitted_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    input = serializers.SerializerMethodField()
    plan = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    run = serializers.SerializerMethodField()
    savings = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField())
    def get_model(self, job) -> dict:
        return {"family": job.family.name, "variant": job.variant.name}

    @extend_schema_field(serializers.DictField())
    def get_input(self, job) -> dict:
        return {"sha256": job.input.sha256, "format": job.input.format, "rows": job.input.rows,
                "size_bytes": job.input.size_bytes}

    @extend_schema_field(serializers.DictField())
    def get_plan(self, job) -> dict:
        return {
            "window_start": job.planned_start, "window_end": job.planned_end,
            "planned_g_per_kwh": str(job.planned_g_per_kwh), "run_now_g_per_kwh": str(job.run_now_g_per_kwh),
            "estimated_seconds": job.estimated_seconds, "forecast": job.plan_method,
            "provider": job.plan_provider, "measurable": job.plan_measurable, "explanation": job.plan_explanation,
            "version": job.plan_version, "planned_at": job.last_planned_at,
        }

    @extend_schema_field(serializers.DictField())
    def get_progress(self, job) -> dict:
        rows = job.input.rows
        return {"rows_done": job.rows_done, "rows": rows,
                "fraction": round(job.rows_done / rows, 4) if rows else 0}

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_run(self, job) -> dict | None:
        if job.started_at is None:
            return None
        return {"started_at": job.started_at, "finished_at": job.finished_at, "attempts": job.attempts,
                "energy_uj": job.energy_uj, "energy_kwh": f"{units.uj_to_kwh(job.energy_uj):.12f}",
                "actual_g_per_kwh": None if job.actual_g_per_kwh is None else str(job.actual_g_per_kwh),
                "co2e_ug": job.co2e_ug, "error": job.error or None}

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_savings(self, job) -> dict | None:
        if job.status != job.Status.SUCCEEDED:
            return None
        return {"run_now_co2e_ug": job.run_now_co2e_ug, "actual_co2e_ug": job.co2e_ug,
                "saved_co2e_ug": job.saved_co2e_ug,
                "counterfactual": "the same measured energy at the run-now intensity of the same forecast"}


class BatchInputForm(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="CSV or Parquet with columns x0..x63 (and optionally id)")
    model = serializers.SlugField(help_text="model family, e.g. digits-classifier")
    mode = serializers.ChoiceField(choices=Mode.choices, default=Mode.STANDARD)
    deadline = serializers.DateTimeField(help_text="ISO 8601 with a time zone, e.g. 2026-12-04T09:00:00Z")


class BatchListApi(TenantAPIView):
    required_scope = Scope.BATCHES
    parser_classes = [MultiPartParser]

    @extend_schema(responses=BatchOutput(many=True), summary="Your batch jobs, newest first")
    def get(self, request, *, tenant):
        jobs = batch_job_list(tenant=tenant)[:200]
        return Response(BatchOutput(jobs, many=True).data)

    @extend_schema(request={"multipart/form-data": BatchInputForm}, responses={201: BatchOutput, 400: ErrorOutput},
                   summary="Upload a batch; green-tier jobs are planned into the lowest-carbon window")
    def post(self, request, *, tenant):
        form = BatchInputForm(data=request.data)
        form.is_valid(raise_exception=True)
        deadline = form.validated_data["deadline"]
        if deadline.tzinfo is None:
            raise ApiError("deadline must carry a time zone, e.g. 2026-12-04T09:00:00Z.", code="invalid_deadline")
        upload = form.validated_data["file"]
        if upload.size > settings.BATCH_MAX_BYTES:
            raise ApiError(f"The file is {upload.size} bytes; the limit is {settings.BATCH_MAX_BYTES}.",
                           code="file_too_large")
        try:
            job = batch_job_submit(tenant=tenant, family_name=form.validated_data["model"],
                                   mode=form.validated_data["mode"], deadline=deadline, content=upload.read(),
                                   filename=upload.name or "")
        except BatchError as exc:
            raise ApiError(exc.detail, code=exc.code) from None
        except UnknownFamily:
            raise ApiError(f"No model family {form.validated_data['model']!r}; GET /v1/models lists them.",
                           code="unknown_model") from None
        return Response(BatchOutput(job).data, status=201)


def _batch_or_404(*, tenant, job_id: int) -> BatchJob:
    job = batch_job_get(tenant=tenant, job_id=job_id)
    if job is None:
        raise NotFound("No such batch job.")
    return job


class BatchDetailApi(TenantAPIView):
    required_scope = Scope.BATCHES

    @extend_schema(responses=BatchOutput, summary="A batch job: status, plan, progress and savings")
    def get(self, request, job_id: int, *, tenant):
        return Response(BatchOutput(_batch_or_404(tenant=tenant, job_id=job_id)).data)


class BatchResultsApi(TenantAPIView):
    required_scope = Scope.BATCHES
    query_params = frozenset({"format"})

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["csv", "parquet"], description="default csv")],
                   responses={(200, "text/csv"): bytes, (200, "application/vnd.apache.parquet"): bytes,
                              409: ErrorOutput},
                   summary="Download a finished job's predictions")
    def get(self, request, job_id: int, *, tenant):
        job = _batch_or_404(tenant=tenant, job_id=job_id)
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise ApiError("format must be csv or parquet.", code="invalid_query")
        if job.status != BatchJob.Status.SUCCEEDED:
            raise ApiError(f"The job is {job.status}; results exist once it has succeeded.", code="not_ready",
                           status_code=409)
        if job.result_purged_at is not None:
            raise ApiError(f"The results were deleted on {job.result_purged_at:%Y-%m-%d} by your retention policy.",
                           code="purged", status_code=410)
        frame = batch_result_frame(job=job)
        if fmt == "parquet":
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            response = HttpResponse(buffer.getvalue(), content_type="application/vnd.apache.parquet")
        else:
            response = HttpResponse(frame.to_csv(index=False), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="batch-{job.id}-results.{fmt}"'
        return response


# --- energy gate for candidate models ---------------------------------------------------------


class CandidateForm(serializers.Serializer):
    file = serializers.FileField(help_text="candidate ONNX model taking the family's inputs")
    max_increase = serializers.DecimalField(max_digits=6, decimal_places=4, min_value=Decimal(0), default=Decimal("0.05"),
                                            help_text="allowed growth of energy per prediction, as a fraction")


class CandidateOutput(serializers.Serializer):
    passed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    statement_markdown = serializers.CharField()
    result = serializers.DictField()


class CandidateApi(TenantAPIView):
    """Energy impact of a model you would like to serve, against the family's default."""

    required_scope = Scope.ADMIN
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": CandidateForm}, responses={200: CandidateOutput, 400: ErrorOutput,
                                                                           404: ErrorOutput},
                   summary="Energy check of a candidate model (the CI energy gate, as an API)")
    def post(self, request, family: str, *, tenant):
        form = CandidateForm(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        if upload.size > settings.CANDIDATE_MAX_BYTES:
            raise ApiError(f"The model is {upload.size} bytes; the limit is {settings.CANDIDATE_MAX_BYTES}.",
                           code="file_too_large")
        if registry.family_get(name=family) is None:
            raise NotFound(f"No model family {family!r}.")
        try:
            result = energy_check(candidate=upload.read(), family_name=family,
                                  max_increase=form.validated_data["max_increase"], rounds=3)
        except GateError as exc:
            raise ApiError(str(exc), code="invalid_model") from None
        return Response({"passed": result.passed, "reasons": result.reasons,
                         "statement_markdown": statement_markdown(result), "result": result.as_json()})


# --- energy budgets ------------------------------------------------------------------------------


class BudgetInput(serializers.Serializer):
    family = StrictCharField(required=False, allow_null=True, default=None, max_length=63,
                             help_text="model family; omit for a budget over all usage")
    # Up to 1 GWh a month: larger limits overflow the 64-bit microjoule column.
    monthly_limit_kwh = StrictDecimalField(max_digits=20, decimal_places=9, min_value=Decimal("0.000000001"),
                                           max_value=Decimal("1000000"))
    enforce = StrictBooleanField(default=False, help_text="refuse predictions (429) beyond the limit")


class SignOffInput(serializers.Serializer):
    reason = StrictCharField(max_length=5000)
    new_limit_kwh = StrictDecimalField(max_digits=20, decimal_places=9, min_value=Decimal("0.000000001"),
                                       max_value=Decimal("1000000"))


class BudgetEventOutput(serializers.Serializer):
    threshold_pct = serializers.IntegerField()
    month = serializers.CharField()
    at = serializers.DateTimeField()
    used_kwh = serializers.CharField()
    limit_kwh = serializers.CharField()


class BudgetSignOffOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    by = serializers.CharField()
    reason = serializers.CharField()
    previous_limit_kwh = serializers.CharField()
    new_limit_kwh = serializers.CharField()


class BudgetOutput(serializers.Serializer):
    id = serializers.IntegerField()
    family = serializers.CharField(allow_null=True)
    monthly_limit_kwh = serializers.CharField()
    month = serializers.CharField()
    used_kwh = serializers.CharField()
    used_fraction = serializers.FloatField()
    enforce = serializers.BooleanField()
    exceeded = serializers.BooleanField()
    events = BudgetEventOutput(many=True)
    sign_offs = BudgetSignOffOutput(many=True)


class StoredKind(serializers.Serializer):
    files = serializers.IntegerField()
    bytes = serializers.IntegerField()
    oldest_age_days = serializers.IntegerField(allow_null=True)
    reads = serializers.IntegerField()


class RetentionReportOutput(serializers.Serializer):
    policy = inline_serializer("RetentionPolicy", {
        "batch_inputs_days": serializers.IntegerField(), "batch_outputs_days": serializers.IntegerField(),
        "usage_detail_days": serializers.IntegerField()})
    batch_inputs = StoredKind()
    batch_outputs = StoredKind()
    usage_detail = inline_serializer("UsageDetailStored", {
        "hourly_rows": serializers.IntegerField(), "monthly_rows": serializers.IntegerField(),
        "oldest_age_days": serializers.IntegerField(allow_null=True),
        "archived_months": serializers.ListField(child=serializers.CharField()),
        "archive_bytes": serializers.IntegerField()})


def _budget_json(budget, month) -> dict:
    from inference.budgets import budget_usage_uj

    usage = budget_usage_uj(budget=budget, month=month)
    return {
        "id": budget.id, "family": budget.family.name if budget.family_id else None,
        "monthly_limit_kwh": f"{units.uj_to_kwh(budget.monthly_limit_uj):.9f}",
        "month": f"{month:%Y-%m}", "used_kwh": f"{units.uj_to_kwh(usage):.9f}",
        "used_fraction": round(usage / budget.monthly_limit_uj, 4), "enforce": budget.enforce,
        "exceeded": budget.exceeded,
        "events": [{"threshold_pct": e.threshold_pct, "month": f"{e.month:%Y-%m}", "at": e.created_at,
                    "used_kwh": f"{units.uj_to_kwh(e.usage_uj):.9f}",
                    "limit_kwh": f"{units.uj_to_kwh(e.limit_uj):.9f}"} for e in budget.events.all()[:24]],
        "sign_offs": [{"at": s.created_at, "by": s.signed_by, "reason": s.reason,
                       "previous_limit_kwh": f"{units.uj_to_kwh(s.previous_limit_uj):.9f}",
                       "new_limit_kwh": f"{units.uj_to_kwh(s.new_limit_uj):.9f}"} for s in budget.sign_offs.all()[:24]],
    }


class BudgetListApi(TenantAPIView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=BudgetOutput(many=True),
                   summary="Monthly energy budgets with this month's use, threshold events and sign-offs")
    def get(self, request, *, tenant):
        from django.utils import timezone

        from inference.budgets import month_start
        from inference.models import EnergyBudget

        month = month_start(timezone.now())
        budgets = EnergyBudget.objects.select_related("family").order_by("id")
        return Response([_budget_json(b, month) for b in budgets])

    @extend_schema(request=BudgetInput, responses={200: BudgetOutput, 400: ErrorOutput},
                   summary="Set the budget (overall or for one family); audited")
    def post(self, request, *, tenant):
        from django.utils import timezone

        from inference.budgets import BudgetError, budget_set, month_start

        form = BudgetInput(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            budget = budget_set(tenant=tenant, family_name=form.validated_data["family"],
                                monthly_limit_uj=units.kwh_to_uj(form.validated_data["monthly_limit_kwh"]),
                                enforce=form.validated_data["enforce"], actor=f"api:{request.auth.prefix}")
        except BudgetError as exc:
            raise ApiError(exc.detail, code=exc.code) from None
        return Response(_budget_json(budget, month_start(timezone.now())))


class BudgetSignOffApi(TenantAPIView):
    required_scope = Scope.ADMIN

    @extend_schema(request=SignOffInput, responses={200: BudgetOutput, 400: ErrorOutput, 404: ErrorOutput},
                   summary="Sign off a higher limit (who, why, new budget); lifts enforcement")
    def post(self, request, budget_id: int, *, tenant):
        from django.utils import timezone

        from inference.budgets import BudgetError, budget_sign_off, month_start
        from inference.models import EnergyBudget

        form = SignOffInput(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            sign_off = budget_sign_off(tenant=tenant, budget_id=budget_id, signed_by=f"api:{request.auth.prefix}",
                                       reason=form.validated_data["reason"],
                                       new_limit_uj=units.kwh_to_uj(form.validated_data["new_limit_kwh"]))
        except EnergyBudget.DoesNotExist:
            raise NotFound("No such budget.") from None
        except BudgetError as exc:
            raise ApiError(exc.detail, code=exc.code) from None
        return Response(_budget_json(sign_off.budget, month_start(timezone.now())))


# --- retention -------------------------------------------------------------------------------------


class RetentionInput(serializers.Serializer):
    batch_inputs_days = StrictIntegerField(min_value=1, max_value=3650)
    batch_outputs_days = StrictIntegerField(min_value=1, max_value=3650)
    usage_detail_days = StrictIntegerField(min_value=62, max_value=3650,
                                           help_text="at least 62: a month is invoiced before its detail is archived")


class RetentionApi(TenantAPIView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=RetentionReportOutput, summary="Retention policy and report: volume, age, reads")
    def get(self, request, *, tenant):
        from inference.retention import retention_report

        return Response(retention_report(tenant=tenant))

    @extend_schema(request=RetentionInput, responses={200: RetentionReportOutput, 400: ErrorOutput},
                   summary="Set the retention policy; audited")
    def put(self, request, *, tenant):
        from inference.retention import RetentionError, retention_policy_set, retention_report

        form = RetentionInput(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            retention_policy_set(tenant=tenant, actor=f"api:{request.auth.prefix}", **form.validated_data)
        except RetentionError as exc:
            raise ApiError(str(exc), code="invalid_policy") from None
        return Response(retention_report(tenant=tenant))
