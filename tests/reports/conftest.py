"""Reports fixtures: prices, backdated tenants, SLA terms, and PDF helpers."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 15, tzinfo=UTC)  # every month of 2025 has ended


@pytest.fixture
def prices(db):
    """EUR prices since 2024 (minor units): standard 50, efficiency 30 per 1,000 predictions."""
    from billing.models import PriceVersion

    return PriceVersion.objects.create(
        currency="EUR", effective_from=BEFORE, base_fee_standard_minor=4900, base_fee_green_minor=9900,
        standard_per_1k_minor=Decimal("50"), efficiency_per_1k_minor=Decimal("30"),
        accurate_per_1k_minor=Decimal("80"), batch_per_1k_minor=Decimal("20"), green_premium_percent=Decimal("20"))


@pytest.fixture
def old_tenant(make_tenant):
    """A tenant created before 2025 (so it is billable for every month of 2025)."""
    from tenants.models import Tenant

    def make(**kwargs):
        tenant = make_tenant(**kwargs)
        Tenant.objects.filter(id=tenant.id).update(created_at=BEFORE)
        tenant.refresh_from_db()
        return tenant

    return make


@pytest.fixture
def make_terms(db):
    from reports.sla import sla_terms_create

    def make(tenant, variant, *, mode="standard", target=1_000_000, start=datetime(2025, 1, 1, tzinfo=UTC), **kw):
        return sla_terms_create(tenant=tenant, family=variant.version.family, mode=mode, effective_from=start,
                                target_energy_per_1k_uj=target, **kw)

    return make


def pdf_text(content: bytes) -> str:
    """All text of a PDF (pypdf), whitespace collapsed to single spaces."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def pdf_pages(content: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(content)).pages)


def pdf_attachment(content: bytes, name: str = "inputs.json") -> bytes:
    from pypdf import PdfReader

    return PdfReader(io.BytesIO(content)).attachments[name][0]


def pdf_metadata(content: bytes) -> dict:
    from pypdf import PdfReader

    return dict(PdfReader(io.BytesIO(content)).metadata)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
