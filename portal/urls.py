"""The portal's URLs, mounted under /portal/ (config/urls.py: path("portal/", include("portal.urls")))."""

from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("switch/", views.switch, name="switch"),
    path("t/<slug:slug>/", views.dashboard, name="dashboard"),
    path("t/<slug:slug>/tier/", views.tier, name="tier"),
    path("t/<slug:slug>/keys/", views.api_keys, name="keys"),
    path("t/<slug:slug>/keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="key-revoke"),
    path("t/<slug:slug>/batches/", views.batches, name="batches"),
    path("t/<slug:slug>/batches/<int:job_id>/results.csv", views.batch_results, {"fmt": "csv"},
         name="batch-results-csv"),
    path("t/<slug:slug>/batches/<int:job_id>/results.parquet", views.batch_results, {"fmt": "parquet"},
         name="batch-results-parquet"),
    path("t/<slug:slug>/reports/", views.reports, name="reports"),
    path("t/<slug:slug>/reports/<int:report_id>/download/", views.report_download, name="report-download"),
    path("t/<slug:slug>/invoices/<int:invoice_id>/", views.invoice, name="invoice"),
    path("t/<slug:slug>/invoices/<int:invoice_id>.csv", views.invoice_csv, name="invoice-csv"),
    path("t/<slug:slug>/invoices/<int:invoice_id>.pdf", views.invoice_pdf_view, name="invoice-pdf"),
]
