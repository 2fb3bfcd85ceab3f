from django.urls import path

from reports import apis

urlpatterns = [
    path("reports", apis.ReportListApi.as_view(), name="reports"),
    path("reports/<int:report_id>", apis.ReportDetailApi.as_view(), name="report-detail"),
    path("reports/<int:report_id>/download", apis.ReportDownloadApi.as_view(), name="report-download"),
    # Invoices belong to billing; their PDF is drawn here (only reports/pdf.py imports WeasyPrint).
    path("invoices/<int:invoice_id>/pdf", apis.InvoicePdfApi.as_view(), name="invoice-pdf"),
]
