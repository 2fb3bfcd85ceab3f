"""Reports API for tenants: list, request, read and download their reports.

Another tenant's report answers exactly like a missing one (404): every lookup goes
through reports.selectors.report_get with the caller's tenant, inside its scope.
"""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from billing.models import Invoice
from config.errors import ApiError
from inference.apis import ErrorOutput  # the one {"code", "detail"} schema component
from reports.models import Report, ReportKind, ReportStatus
from reports.selectors import report_get, report_list
from reports.services import ReportError, invoice_pdf, invoice_pdf_filename, report_file_path, report_request
from tenants.models import Scope
from tenants.views import TenantAPIView

LIST_LIMIT = 200  # newest first; a tenant makes a few reports a month


class ReportOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    period = serializers.CharField(help_text="2026 (a year) or 2026-11 (a month).")
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField(help_text="Excluded. For the current year: the start of the current month "
                                                     "(reports cover complete months only).")
    status = serializers.ChoiceField(choices=ReportStatus.choices)
    fingerprint = serializers.CharField(help_text="SHA-256 of the canonical JSON of the report's inputs "
                                                  "(the PDF's inputs.json attachment).")
    sha256 = serializers.CharField(help_text="SHA-256 of the PDF file.")
    size_bytes = serializers.IntegerField()
    pages = serializers.IntegerField()
    error = serializers.CharField(help_text="Why generation failed (status failed), else empty.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, report: Report) -> str | None:
        if report.status != ReportStatus.READY:
            return None
        return reverse("report-download", kwargs={"report_id": report.id})


class ReportRequestInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    period = serializers.RegexField(r"^\d{4}(-\d{2})?$", max_length=7, help_text="carbon_report: a year, e.g. 2026. sla_statement: a year "
                                                            "or a month, e.g. 2026-11.")


def _report_or_404(*, tenant, report_id: int) -> Report:
    try:
        return report_get(tenant=tenant, report_id=report_id)
    except Report.DoesNotExist:
        raise NotFound("No such report.") from None


class ReportListApi(TenantAPIView):
    required_scope = Scope.USAGE

    @extend_schema(responses=ReportOutput(many=True), summary="Your reports, newest first")
    def get(self, request, *, tenant):
        return Response(ReportOutput(report_list(tenant=tenant)[:LIST_LIMIT], many=True).data)

    @extend_schema(request=ReportRequestInput, responses={202: ReportOutput, 400: ErrorOutput},
                   summary="Request an annual carbon report or an SLA statement (generated in the background)")
    def post(self, request, *, tenant):
        form = ReportRequestInput(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            report = report_request(tenant=tenant, kind=form.validated_data["kind"],
                                    period=form.validated_data["period"], requested_by=f"api:{request.auth.prefix}")
        except ReportError as exc:
            raise ApiError(exc.detail, code=exc.code) from None
        return Response(ReportOutput(report).data, status=202)


class ReportDetailApi(TenantAPIView):
    required_scope = Scope.USAGE

    @extend_schema(responses={200: ReportOutput, 404: ErrorOutput}, summary="A report's status and fingerprint")
    def get(self, request, report_id: int, *, tenant):
        return Response(ReportOutput(_report_or_404(tenant=tenant, report_id=report_id)).data)


class ReportDownloadApi(TenantAPIView):
    required_scope = Scope.USAGE

    @extend_schema(responses={(200, "application/pdf"): bytes, 404: ErrorOutput, 409: ErrorOutput, 410: ErrorOutput},
                   summary="Download a ready report (PDF)")
    def get(self, request, report_id: int, *, tenant):
        report = _report_or_404(tenant=tenant, report_id=report_id)
        if report.status == ReportStatus.PENDING:
            raise ApiError("The report is still being generated; try again shortly.", code="not_ready",
                           status_code=409)
        if report.status == ReportStatus.FAILED:
            raise ApiError(f"The report could not be generated: {report.error}", code="report_failed",
                           status_code=409)
        path = report_file_path(report)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ApiError("The report's file is no longer stored; request the report again.",
                           code="report_file_missing", status_code=410) from None
        filename = f"greentier-{report.kind.replace('_', '-')}-{report.period}-{tenant.slug}.pdf"
        response = FileResponse(handle, content_type="application/pdf", as_attachment=True, filename=filename)
        response["X-Report-Fingerprint"] = report.fingerprint
        return response


class InvoicePdfApi(TenantAPIView):
    required_scope = Scope.USAGE

    @extend_schema(responses={(200, "application/pdf"): bytes, 404: ErrorOutput, 503: ErrorOutput},
                   summary="Download an invoice as PDF (rendered on request)")
    def get(self, request, invoice_id: int, *, tenant):
        try:
            document = invoice_pdf(tenant=tenant, invoice_id=invoice_id)
        except Invoice.DoesNotExist:
            raise NotFound("No such invoice.") from None
        except ReportError as exc:
            raise ApiError(exc.detail, code=exc.code, status_code=503) from None
        response = HttpResponse(document.pdf.content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice_pdf_filename(document)}"'
        response["X-Report-Fingerprint"] = document.fingerprint
        return response
