"""Writes for tenants, memberships and API keys."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants import keys
from tenants.models import ApiKey, AuditEvent, Membership, Role, Scope, Tenant, Tier, TierChange
from tenants.scope import all_tenants_scope, tenant_scope
from tenants.selectors import api_key_cache_clear


class TenantError(ValueError):
    """Invalid tenant input; the message is safe to show to the user."""


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    raw_key: str  # shown once, never stored


def tenant_create(*, slug: str, name: str = "", grid_zone: str = "GB", tier: str = Tier.STANDARD,
                  currency: str = "EUR") -> Tenant:
    """Create a tenant. Raises TenantError for a taken slug or an invalid field."""
    from django.core.exceptions import ValidationError

    if slugify(slug) != slug:
        raise TenantError(f"slug {slug!r} must be lowercase letters, digits and hyphens")
    tenant = Tenant(slug=slug, name=name or slug, grid_zone=grid_zone, tier=tier, currency=currency)
    try:
        tenant.full_clean()
    except ValidationError as exc:
        raise TenantError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError:
        raise TenantError(f"a tenant with slug {slug!r} already exists") from None
    return tenant


def membership_set(*, tenant: Tenant, user, role: str = Role.VIEWER) -> Membership:
    if role not in Role.values:
        raise TenantError(f"role must be one of {', '.join(Role.values)}")
    with tenant_scope(tenant.id):
        membership, _ = Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": role})
    return membership


def parse_scopes(values: list[str] | None) -> list[str]:
    """Validate requested scopes; None or empty means every scope."""
    if not values:
        return list(Scope.values)
    unknown = sorted(set(values) - set(Scope.values))
    if unknown:
        raise TenantError(f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(Scope.values)}")
    return sorted(set(values), key=Scope.values.index)


def api_key_create(*, tenant: Tenant, scopes: list[str] | None = None, name: str = "",
                   created_by: str = "") -> CreatedKey:
    scopes = parse_scopes(scopes)
    new = keys.generate(settings.API_KEY_ENVIRONMENT)
    with tenant_scope(tenant.id):
        api_key = ApiKey.objects.create(
            tenant=tenant,
            prefix=new.prefix,
            lookup_id=new.lookup_id,
            secret_sha256=new.sha256,
            name=name[:100],
            scopes=scopes,
            created_by=created_by[:150],
        )
        audit_record(actor=created_by or "unknown", action="api_key.create", target_type="api_key",
                     target_id=api_key.prefix, tenant=tenant, before=None,
                     after={"prefix": api_key.prefix, "name": api_key.name, "scopes": scopes})
    return CreatedKey(api_key=api_key, raw_key=new.raw)


def api_key_revoke(*, tenant: Tenant, key_id: int, revoked_by: str = "") -> ApiKey:
    """Revoke a tenant's key. Raises ApiKey.DoesNotExist for another tenant's key."""
    with tenant_scope(tenant.id):
        api_key = ApiKey.objects.select_for_update().get(id=key_id)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            audit_record(actor=revoked_by or "unknown", action="api_key.revoke", target_type="api_key",
                         target_id=api_key.prefix, tenant=tenant, before={"revoked_at": None},
                         after={"revoked_at": api_key.revoked_at.isoformat()})
    api_key_cache_clear()
    return api_key


def tenant_change_tier(*, tenant: Tenant, tier: str, changed_by: str, at=None) -> TierChange | None:
    """Switch a tenant's tier now (or at `at`) and record it. Returns None if unchanged.

    Raises TenantError for an unknown tier.
    """
    if tier not in Tier.values:
        raise TenantError(f"tier must be one of {', '.join(Tier.values)}")
    with tenant_scope(tenant.id):
        locked = Tenant.objects.select_for_update().get(id=tenant.id)
        if locked.tier == tier:
            return None
        change = TierChange.objects.create(
            tenant=locked, from_tier=locked.tier, to_tier=tier, effective_at=at or timezone.now(),
            changed_by=changed_by[:150],
        )
        locked.tier = tier
        locked.save(update_fields=["tier"])
        audit_record(actor=changed_by, action="tier.change", target_type="tenant", target_id=locked.slug,
                     tenant=locked, before={"tier": change.from_tier}, after={"tier": tier})
    tenant.tier = tier
    return change


def audit_record(*, actor: str, action: str, target_type: str, target_id: object = "", tenant: Tenant | None = None,
                 before: dict | None = None, after: dict | None = None) -> AuditEvent:
    """Append an audit event (in the caller's transaction, so a rolled-back change leaves
    no event). Platform-wide changes pass tenant=None."""
    scope = tenant_scope(tenant.id) if tenant is not None else all_tenants_scope()
    with scope:
        return AuditEvent.objects.create(
            tenant=tenant, actor=(actor or "unknown")[:150], action=action[:64], target_type=target_type[:64],
            target_id=str(target_id)[:64], before=before, after=after)
