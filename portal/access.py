"""Who may open a tenant's portal pages, and the scope those pages run in.

`tenant_page` resolves the tenant from the URL slug among the signed-in user's own
memberships only, so another tenant's page answers exactly like a missing one (the
same 404 page, same status). It then runs the view inside `tenant_scope` (the ORM wall
and PostgreSQL row-level security) and hands it an `Access` with the tenant and the
user's role. Every method but GET and HEAD changes something and needs the admin role:
viewers get 403 before the view runs, so nothing changes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.selectors import memberships_for_user
from tenants.models import Membership, Role, Tenant
from tenants.scope import tenant_scope

SAFE_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Access:
    tenant: Tenant
    role: str
    memberships: tuple[Membership, ...]  # the user's, in every tenant (for the switcher)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def not_found(request: HttpRequest) -> HttpResponse:
    """The one 404 of the portal: for a missing tenant, page or file, and for another tenant's."""
    return render(request, "portal/404.html", status=404)


def forbidden(request: HttpRequest, access: Access | None = None) -> HttpResponse:
    return render(request, "portal/403.html", {"access": access}, status=403)


def tenant_page(view):
    """Decorate `view(request, *, access, **url_kwargs)` served under /portal/t/<slug>/."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, slug: str, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        memberships = tuple(memberships_for_user(user=request.user))
        membership = next((m for m in memberships if m.tenant.slug == slug), None)
        if membership is None:
            return not_found(request)
        access = Access(tenant=membership.tenant, role=membership.role, memberships=memberships)
        if request.method not in SAFE_METHODS and not access.is_admin:
            return forbidden(request, access)
        with tenant_scope(access.tenant.id):
            response = view(request, access=access, **kwargs)
        response.headers.setdefault("Cache-Control", "private, no-store")
        return response

    return wrapped
