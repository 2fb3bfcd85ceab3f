"""The account admins' web pages. Each view parses input, calls one service or selector,
and renders; tenant pages run inside `tenant_page` (portal.access)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.models import Invoice
from inference.batches import BatchError, batch_job_submit, batch_result_frame
from inference.registry import family_list
from inference.routing import UnknownFamily
from inference.selectors import batch_job_get
from portal import selectors, services
from portal.access import Access, not_found, tenant_page
from portal.forms import ApiKeyForm, BatchUploadForm, LoginForm, ReportRequestForm, TierForm
from portal.periods import DashboardPeriodError, current_period, dashboard_period_parse
from reports.services import ReportError, invoice_pdf, invoice_pdf_filename, report_file_path, report_request
from tenants.models import ApiKey, Tier
from tenants.selectors import api_key_list
from tenants.services import TenantError, api_key_create, api_key_revoke, tenant_change_tier

_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,63}")

# --- signing in and out ------------------------------------------------------------------------


def _client_ip(request: HttpRequest) -> str:
    """The address the sign-in rate limit counts. X-Forwarded-For is client-controlled, so
    it is used only with PORTAL_TRUSTED_PROXIES = n (the number of reverse proxies in front
    of the app, each appending the address it saw): the n-th entry from the right. Without
    it behind a proxy every client would share the proxy's address (docs/portal.md)."""
    proxies = int(getattr(settings, "PORTAL_TRUSTED_PROXIES", 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))][:64]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class LoginView(auth_views.LoginView):
    """Django's sign-in with failed attempts rate-limited per username and IP."""

    template_name = "portal/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True
    next_page = reverse_lazy("portal:home")

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")[:150]
        wait = services.login_blocked_seconds(username=username, ip=_client_ip(request))
        if wait:
            form = self.get_form()
            form.errors.clear()
            minutes = (wait + 59) // 60
            return self.render_to_response(self.get_context_data(
                form=form, blocked=f"Too many failed sign-in attempts. For your security, sign-in for this account "
                                   f"from your network is paused for {minutes} minute{'s' if minutes != 1 else ''}. "
                                   "Try again later, or ask your account admin to reset your password."),
                status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        services.login_failures_clear(username=form.get_user().get_username(), ip=_client_ip(self.request))
        return super().form_valid(form)

    def form_invalid(self, form):
        username = self.request.POST.get("username", "")[:150]
        services.login_failure_record(username=username, ip=_client_ip(self.request))
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("portal:login")


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Straight to the only tenant; a chooser for people in several; next steps for none."""
    memberships = selectors.memberships_for_user(user=request.user)
    if len(memberships) == 1:
        return redirect("portal:dashboard", slug=memberships[0].tenant.slug)
    return render(request, "portal/tenants.html", {"memberships": memberships})


@login_required
@require_GET
def switch(request: HttpRequest) -> HttpResponse:
    """The tenant switcher's target (a GET form): on to that tenant's dashboard. Membership
    is checked there, so an unknown slug ends on the portal's 404 like any other."""
    slug = request.GET.get("tenant", "")
    if not slug:
        return redirect("portal:home")
    if not _SLUG.fullmatch(slug):
        return not_found(request)
    return redirect(reverse("portal:dashboard", kwargs={"slug": slug}))


# --- dashboard -------------------------------------------------------------------------------------


@tenant_page
@require_GET
def dashboard(request: HttpRequest, *, access: Access) -> HttpResponse:
    now = timezone.now()
    try:
        period = dashboard_period_parse(p=request.GET.get("p"), first=request.GET.get("from"),
                                        last=request.GET.get("to"), now=now)
        error = ""
    except DashboardPeriodError as exc:
        period, error = current_period("month", now=now), str(exc)
    context = {
        "access": access, "nav": "dashboard", "period": period, "period_error": error,
        **selectors.dashboard_page(tenant=access.tenant, period=period, now=now),
        "shortcuts": [(label, current_period(kind, now=now))
                      for kind, label in (("month", "This month"), ("quarter", "This quarter"), ("year", "This year"))],
        "previous_period": period.previous(),
        "next_period": following if (following := period.next()) and following.start <= now else None,
        "range_first": period.start.date(), "range_last": (period.end - timedelta(days=1)).date(),
    }
    return render(request, "portal/dashboard.html", context, status=400 if error else 200)


# --- tier --------------------------------------------------------------------------------------------


@tenant_page
@require_http_methods(["GET", "HEAD", "POST"])
def tier(request: HttpRequest, *, access: Access) -> HttpResponse:
    if request.method == "POST":
        form = TierForm(request.POST)
        if form.is_valid():
            try:
                change = tenant_change_tier(tenant=access.tenant, tier=form.cleaned_data["tier"],
                                            changed_by=request.user.get_username())
            except TenantError as exc:
                messages.error(request, str(exc))
            else:
                if change is None:
                    messages.info(request, f"{access.tenant.name} is already on the {access.tenant.tier} tier.")
                else:
                    messages.success(request, f"Switched to the {Tier(change.to_tier).label.lower()} tier "
                                              f"at {change.effective_at:%Y-%m-%d %H:%M} UTC. This month is billed "
                                              "pro rata for the time spent in each tier.")
            return redirect("portal:tier", slug=access.tenant.slug)
        messages.error(request, "Choose standard or green.")
        return redirect("portal:tier", slug=access.tenant.slug)
    preview = selectors.tier_preview(tenant=access.tenant, now=timezone.now())
    return render(request, "portal/tier.html", {"access": access, "nav": "tier", "preview": preview})


# --- API keys -----------------------------------------------------------------------------------


@tenant_page
@require_http_methods(["GET", "HEAD", "POST"])
def api_keys(request: HttpRequest, *, access: Access) -> HttpResponse:
    created = None
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = api_key_create(tenant=access.tenant, scopes=form.cleaned_data["scopes"],
                                     name=form.cleaned_data["name"], created_by=request.user.get_username())
        except TenantError as exc:
            form.add_error("scopes", str(exc))
        else:
            form = ApiKeyForm()
    status = 400 if request.method == "POST" and created is None else 200
    response = render(request, "portal/keys.html", {
        "access": access, "nav": "keys", "form": form, "created": created,
        "keys": list(api_key_list(tenant=access.tenant)),
    }, status=status)
    return response


@tenant_page
@require_POST
def api_key_revoke_view(request: HttpRequest, *, access: Access, key_id: int) -> HttpResponse:
    if not 0 < key_id < 2**63:
        return not_found(request)
    try:
        revoked = api_key_revoke(tenant=access.tenant, key_id=key_id)
    except ApiKey.DoesNotExist:
        return not_found(request)
    messages.success(request, f"Key {revoked.prefix}… is revoked. Requests with it are refused from now on.")
    return redirect("portal:keys", slug=access.tenant.slug)


# --- batch jobs -----------------------------------------------------------------------------------


@tenant_page
@require_http_methods(["GET", "HEAD", "POST"])
def batches(request: HttpRequest, *, access: Access) -> HttpResponse:
    families = [f.name for f in family_list()]
    form = BatchUploadForm(request.POST or None, request.FILES or None, families=families,
                           initial={"deadline": (timezone.now() + timedelta(hours=24)).replace(
                               minute=0, second=0, microsecond=0)})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = batch_job_submit(tenant=access.tenant, family_name=form.cleaned_data["model"],
                                       mode=form.cleaned_data["mode"], deadline=form.cleaned_data["deadline"],
                                       content=upload.read(), filename=upload.name or "")
            except BatchError as exc:
                form.add_error("deadline" if exc.code == "invalid_deadline" else "file", exc.detail)
            except UnknownFamily:
                form.add_error("model", "That model is no longer available; choose another.")
            else:
                messages.success(request, f"Batch job {job.id} is {job.get_status_display().lower()}: "
                                          f"{job.plan_explanation}")
                return redirect("portal:batches", slug=access.tenant.slug)
        status = 400
    return render(request, "portal/batches.html", {
        "access": access, "nav": "batches", "form": form, "families": families,
        "jobs": selectors.batch_job_page(tenant=access.tenant, page=request.GET.get("page")),
    }, status=status)


@tenant_page
@require_GET
def batch_results(request: HttpRequest, *, access: Access, job_id: int, fmt: str) -> HttpResponse:
    job = batch_job_get(tenant=access.tenant, job_id=job_id)
    if job is None or not selectors.batch_result_stored(job=job):
        return not_found(request)  # missing, another tenant's, not finished, or removed by retention
    frame = batch_result_frame(job=job)
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        response = HttpResponse(buffer.getvalue(), content_type="application/vnd.apache.parquet")
    else:
        response = HttpResponse(frame.to_csv(index=False), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="batch-{job.id}-results.{fmt}"'
    return response


# --- reports and invoices -------------------------------------------------------------------------


@tenant_page
@require_http_methods(["GET", "HEAD", "POST"])
def reports(request: HttpRequest, *, access: Access) -> HttpResponse:
    now = timezone.now()
    form = ReportRequestForm(request.POST or None, initial={"kind": "carbon_report",
                                                            "period": str(now.year if now.month > 1 else now.year - 1)})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                report = report_request(tenant=access.tenant, kind=form.cleaned_data["kind"],
                                        period=form.cleaned_data["period"].strip(),
                                        requested_by=f"portal:{request.user.get_username()}")
            except ReportError as exc:
                form.add_error("period", exc.detail)
            else:
                messages.success(request, f"Your {report.get_kind_display().lower()} for {report.period} is being "
                                          "generated. Refresh this page in a moment to download it.")
                return redirect("portal:reports", slug=access.tenant.slug)
        status = 400
    return render(request, "portal/reports.html", {
        "access": access, "nav": "reports", "form": form, **selectors.reports_page(tenant=access.tenant, now=now),
    }, status=status)


@tenant_page
@require_GET
def report_download(request: HttpRequest, *, access: Access, report_id: int) -> HttpResponse:
    report = selectors.report_file_get(tenant=access.tenant, report_id=report_id)
    if report is None:
        return not_found(request)
    try:
        handle = report_file_path(report).open("rb")
    except FileNotFoundError:
        return not_found(request)
    filename = f"greentier-{report.kind.replace('_', '-')}-{report.period}-{access.tenant.slug}.pdf"
    return FileResponse(handle, content_type="application/pdf", as_attachment=True, filename=filename)


@tenant_page
@require_GET
def invoice(request: HttpRequest, *, access: Access, invoice_id: int) -> HttpResponse:
    found = selectors.invoice_with_lines(tenant=access.tenant, invoice_id=invoice_id)
    if found is None:
        return not_found(request)
    return render(request, "portal/invoice.html", {"access": access, "nav": "reports", "invoice": found})


@tenant_page
@require_GET
def invoice_csv(request: HttpRequest, *, access: Access, invoice_id: int) -> HttpResponse:
    found = selectors.invoice_with_lines(tenant=access.tenant, invoice_id=invoice_id)
    if found is None:
        return not_found(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    _invoice_csv_write(response, found)
    response["Content-Disposition"] = (f'attachment; filename="greentier-invoice-{found.period_label}-'
                                       f'{access.tenant.slug}.csv"')
    return response


@tenant_page
@require_GET
def invoice_pdf_view(request: HttpRequest, *, access: Access, invoice_id: int) -> HttpResponse:
    try:
        document = invoice_pdf(tenant=access.tenant, invoice_id=invoice_id)
    except Invoice.DoesNotExist:
        return not_found(request)
    except ReportError as exc:
        messages.error(request, f"The PDF could not be made just now ({exc.detail}); the CSV has the same lines.")
        return redirect("portal:invoice", access.tenant.slug, invoice_id)
    response = HttpResponse(document.pdf.content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice_pdf_filename(document)}"'
    return response


def _invoice_csv_write(out, invoice) -> None:
    """One row per invoice line, amounts in minor units and in major units, as the API."""
    from billing.money import format_major

    writer = csv.writer(out)
    writer.writerow(["invoice_id", "period", "status", "currency", "position", "kind", "mode", "tier", "description",
                     "span_start", "span_end", "quantity", "unit_price_minor", "unit_divisor", "amount_minor",
                     "amount", "energy_uj", "co2e_ug"])
    for line in invoice.lines.all():
        writer.writerow([invoice.id, invoice.period_label, invoice.status, invoice.currency, line.position, line.kind,
                         line.mode, line.tier, line.description, line.span_start.isoformat(),
                         line.span_end.isoformat(), f"{line.quantity:f}", f"{line.unit_price_minor:f}",
                         line.unit_divisor, line.amount_minor, format_major(line.amount_minor, invoice.currency),
                         line.energy_uj, line.co2e_ug])
    writer.writerow([invoice.id, invoice.period_label, invoice.status, invoice.currency, "", "total", "", "", "Total",
                     invoice.period_start.isoformat(), invoice.period_end.isoformat(), "", "", "",
                     invoice.total_minor, format_major(invoice.total_minor, invoice.currency), invoice.energy_uj,
                     invoice.co2e_ug])
