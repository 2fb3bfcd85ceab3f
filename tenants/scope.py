"""The tenant-scoping mechanism: which tenant the current request or task acts for.

Two walls, both set by `tenant_scope`:
1. the ORM: `TenantOwnedModel.objects` refuses to query unless a tenant is active
   (fail closed) and filters by it;
2. PostgreSQL row-level security: the same tenant id goes into the transaction-local
   setting `app.tenant_id` that every tenant-owned table's policy compares against.

Cross-tenant work (monthly runs, key lookup) is explicit: `all_tenants_scope()` plus
`Model.all_tenants`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from django.db import connections, transaction

ALL_TENANTS = object()
_current: contextvars.ContextVar[object | int | None] = contextvars.ContextVar("greentier_tenant", default=None)
# The Django admin (staff only) uses Django's own machinery (forms, unique checks) that
# goes through `objects`; only there may `objects` answer across tenants.
_admin: contextvars.ContextVar[bool] = contextvars.ContextVar("greentier_admin_scope", default=False)


class TenantScopeError(RuntimeError):
    """A tenant-owned model was queried with no tenant in scope."""


def current_tenant_id() -> int | None:
    value = _current.get()
    return value if isinstance(value, int) else None


def is_all_tenants() -> bool:
    return _current.get() is ALL_TENANTS


def is_admin_scope() -> bool:
    return _admin.get() and _current.get() is ALL_TENANTS


def _set_db_scope(using: str, tenant_id: int | None, all_tenants: bool) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return  # the embedded SQLite demo has only the ORM wall
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.tenant_id', %s, true), set_config('app.all_tenants', %s, true)",
            ["" if tenant_id is None else str(tenant_id), "on" if all_tenants else "off"],
        )


@contextlib.contextmanager
def _scope(value: object, *, using: str) -> Iterator[None]:
    token = _current.set(value)
    try:
        # One transaction per scope: the RLS setting is transaction-local, so it can
        # never leak into another request that reuses the connection.
        with transaction.atomic(using=using):
            _set_db_scope(using, value if isinstance(value, int) else None, value is ALL_TENANTS)
            yield
            # Nested atomic blocks (savepoints) keep the setting; restore on exit of an
            # inner scope happens in the finally of the outer one.
    finally:
        _current.reset(token)
        if transaction.get_connection(using).in_atomic_block:
            previous = _current.get()
            _set_db_scope(using, previous if isinstance(previous, int) else None, previous is ALL_TENANTS)


@contextlib.contextmanager
def tenant_scope(tenant_id: int, *, using: str = "default") -> Iterator[None]:
    """Act for one tenant inside a transaction. Raises TypeError for a non-int id."""
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
        raise TypeError(f"tenant_scope needs an int tenant id, got {tenant_id!r}")
    with _scope(tenant_id, using=using):
        yield


@contextlib.contextmanager
def all_tenants_scope(*, using: str = "default") -> Iterator[None]:
    """Cross-tenant work (jobs, credential lookup). Greppable on purpose."""
    with _scope(ALL_TENANTS, using=using):
        yield


@contextlib.contextmanager
def admin_all_tenants_scope(*, using: str = "default") -> Iterator[None]:
    """The Django admin's requests: all tenants, and `objects` may be used unfiltered
    (the admin's forms and unique checks call it). Nowhere else."""
    token = _admin.set(True)
    try:
        with all_tenants_scope(using=using):
            yield
    finally:
        _admin.reset(token)
