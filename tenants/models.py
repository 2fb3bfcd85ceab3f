from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from tenants.scope import TenantScopeError, current_tenant_id, is_admin_scope, is_all_tenants


class Tier(models.TextChoices):
    STANDARD = "standard", "Standard"
    GREEN = "green", "Green"


class Tenant(models.Model):
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    # Grid zone in Electricity Maps' naming: GB, DE, FR, US-CAL-CISO, ...
    grid_zone = models.CharField(
        max_length=32,
        validators=[RegexValidator(r"^[A-Z]{2}(-[A-Z0-9]+)*$", "Zone ids look like GB, DE or US-CAL-CISO.")],
    )
    currency = models.CharField(
        max_length=3, default="EUR", validators=[RegexValidator(r"^[A-Z]{3}$", "ISO 4217 code, e.g. EUR.")]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=models.Q(tier__in=Tier.values), name="tenant_tier_valid"),
        ]

    def __str__(self) -> str:
        return self.slug


class TenantScopedQuerySet(models.QuerySet):
    pass


class TenantScopedManager(models.Manager.from_queryset(TenantScopedQuerySet)):
    """Default manager of tenant-owned models: fails closed without a tenant in scope."""

    def get_queryset(self):
        qs = super().get_queryset()
        tenant_id = current_tenant_id()
        if tenant_id is not None:
            return qs.filter(tenant_id=tenant_id)
        if is_admin_scope():
            return qs
        if is_all_tenants():
            raise TenantScopeError(
                f"{self.model.__name__}.objects inside all_tenants_scope(): use {self.model.__name__}.all_tenants"
            )
        raise TenantScopeError(
            f"{self.model.__name__}.objects used with no tenant in scope; wrap the call in tenant_scope()"
        )


class TenantOwnedModel(models.Model):
    """Base class of every tenant-owned table (row-level security applies to each)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()
    all_tenants = models.Manager()  # explicit cross-tenant escape hatch for jobs and admin

    class Meta:
        abstract = True
        base_manager_name = "all_tenants"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    VIEWER = "viewer", "Viewer"


class Membership(TenantOwnedModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant"),
        ]


class Scope(models.TextChoices):
    PREDICT = "predict", "Run predictions"
    BATCHES = "batches", "Submit and read batch jobs"
    USAGE = "usage", "Read usage, invoices and reports"
    ADMIN = "admin", "Manage API keys and account settings"


class ApiKey(TenantOwnedModel):
    # "gt_live_<lookup id>": shown in lists; the secret part is never stored.
    prefix = models.CharField(max_length=40)
    lookup_id = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)  # hex SHA-256 of the whole key
    name = models.CharField(max_length=100, blank=True, default="")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.prefix

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class TierChange(TenantOwnedModel):
    """Every tier switch, who made it and when; billing prorates a period by these."""

    from_tier = models.CharField(max_length=16, choices=Tier.choices)
    to_tier = models.CharField(max_length=16, choices=Tier.choices)
    effective_at = models.DateTimeField()
    changed_by = models.CharField(max_length=150)  # username, "cli" or "api:<key prefix>"

    class Meta(TenantOwnedModel.Meta):
        ordering = ["effective_at", "id"]
        indexes = [models.Index(fields=["tenant", "effective_at"], name="tierchange_tenant_at")]


class AuditEvent(models.Model):
    """Append-only record of a change: who changed what, with the values before and after.

    Rows are never updated or deleted: a PostgreSQL trigger refuses both. tenant is
    null for platform-wide changes (prices), which only staff see; row-level security
    shows a tenant its own events only.
    """

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(max_length=150)  # username, "cli", "api:<key prefix>", "system"
    action = models.CharField(max_length=64)  # e.g. tier.change, api_key.create, price.update
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = models.Manager()  # reads go through tenants.selectors.audit_events (scoped)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="auditevent_tenant_created")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target_type}:{self.target_id}"
