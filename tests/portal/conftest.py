"""Portal fixtures: users and memberships, a priced tenant with a month of ledger rows and
stored grid intensity, and (for the browser tests) one Chromium per session."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import ROOT

# Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls
# from it ("SynchronousOnlyOperation") although they are ordinary blocking calls here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# The real model family of the inference tests (ONNX files from sklearn's digits), for uploads.
from tests.inference.conftest import digits_family, digits_models  # noqa: E402,F401  (fixtures)

PASSWORD = "correct horse battery staple"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
_counter = iter(range(1, 10**9))


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    def make(username: str | None = None, password: str = PASSWORD):
        username = username or f"user{next(_counter)}"
        return get_user_model().objects.create_user(username=username, password=password,
                                                    email=f"{username}@example.com")

    return make


@pytest.fixture
def member(db):
    """member(tenant, user, role) -> Membership."""
    from tenants.services import membership_set

    def make(tenant, user, role="admin"):
        return membership_set(tenant=tenant, user=user, role=role)

    return make


@pytest.fixture
def price_book(db):
    """EUR prices in effect since 2020 (minor units; per 1,000 predictions)."""
    from billing.models import PriceVersion

    return PriceVersion.objects.create(
        currency="EUR", effective_from=datetime(2020, 1, 1, tzinfo=UTC), base_fee_standard_minor=4900,
        base_fee_green_minor=6900, standard_per_1k_minor=Decimal("42.5"), efficiency_per_1k_minor=Decimal("30"),
        accurate_per_1k_minor=Decimal("60"), batch_per_1k_minor=Decimal("20"), green_premium_percent=Decimal("20"))


def backdate(tenant, when: datetime) -> None:
    """Tenants are created 'now'; billing only charges from creation, so tests move it back."""
    from tenants.models import Tenant

    Tenant.objects.filter(id=tenant.id).update(created_at=when)
    tenant.created_at = when


def intensity_at(hour: datetime) -> Decimal:
    """A daily pattern with a clean night (gCO2e/kWh): 120 at 03:00 UTC, 320 at 15:00."""
    return Decimal(220 - 100 * math.cos((hour.hour - 3) / 24 * 2 * math.pi)).quantize(Decimal("0.001"))


def seed_intensity(zone: str, start: datetime, end: datetime) -> None:
    from carbon.models import GridIntensity
    from carbon.selectors import intensity_cache_clear

    hours = int((end - start).total_seconds() // 3600)
    GridIntensity.objects.bulk_create([
        GridIntensity(zone=zone, start=start + timedelta(hours=h), end=start + timedelta(hours=h + 1),
                      intensity_g_per_kwh=intensity_at(start + timedelta(hours=h)), kind="lifecycle",
                      source="test-pattern")
        for h in range(hours)])
    intensity_cache_clear()


def seed_usage(tenant, variants: dict, start: datetime, end: datetime, *, step_hours: int = 1) -> int:
    """Ledger rows every `step_hours` in [start, end): the default variant in standard mode
    and the efficient one in efficiency mode, sized like a small service. Returns rows."""
    from carbon import units
    from inference.models import UsageHour
    from tenants.scope import tenant_scope

    rows, hour = [], start
    while hour < end:
        g = intensity_at(hour)
        for variant, mode, base in ((variants["baseline"], "standard", 4000), (variants["student"], "efficiency", 2500)):
            predictions = base + 37 * hour.hour + 11 * hour.day
            energy_uj = variant.energy_per_1k_uj * predictions // 1000
            cpu_us = energy_uj // 5
            rows.append(UsageHour(
                tenant=tenant, hour=hour, variant=variant, mode=mode, source="online", energy_method="cpu-model: test",
                predictions=predictions, requests=predictions // 10, cpu_us=cpu_us, inference_cpu_us=cpu_us // 2,
                energy_uj=energy_uj, co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=g),
                embodied_co2e_ug=units.embodied_ug(cpu_us=cpu_us, ug_per_cpu_second=Decimal(149)),
                intensity_g_per_kwh=g, intensity_source="test-pattern"))
        hour += timedelta(hours=step_hours)
    day = datetime(start.year, start.month, start.day, 3, tzinfo=UTC)
    while day < end:  # one nightly batch run a day, in the clean hour
        g, variant = intensity_at(day), variants["baseline"]
        predictions = 20_000 + 100 * day.day
        energy_uj = variant.energy_per_1k_uj * predictions // 1000
        rows.append(UsageHour(
            tenant=tenant, hour=day, variant=variant, mode="standard", source="batch", energy_method="cpu-model: test",
            predictions=predictions, requests=1, cpu_us=energy_uj // 5, inference_cpu_us=energy_uj // 5,
            energy_uj=energy_uj, co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=g),
            embodied_co2e_ug=units.embodied_ug(cpu_us=energy_uj // 5, ug_per_cpu_second=Decimal(149)),
            intensity_g_per_kwh=g, intensity_source="test-pattern"))
        day += timedelta(days=1)
    with tenant_scope(tenant.id):
        UsageHour.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def seed_green_jobs(tenant, family, variant, start: datetime, *, count: int) -> list:
    """Finished green-tier batch jobs, one every 3 days from `start`, each run in the 03:00
    window instead of at submission (15:00): measured savings, as batch_job_run records them."""
    from carbon import units
    from inference.models import BatchInput, BatchJob
    from tenants.scope import tenant_scope

    jobs = []
    with tenant_scope(tenant.id):
        batch_input = BatchInput.objects.create(tenant=tenant, sha256="f" * 64, format="csv", size_bytes=52_000,
                                                rows=20_000, path=f"batches/{tenant.id}/inputs/{'f' * 64}.csv")
        for n in range(count):
            submitted = start + timedelta(days=3 * n, hours=15)
            run_at = submitted + timedelta(hours=12)  # 03:00 the next day
            energy_uj = 180_000_000 + 1_000_000 * n
            run_now, planned = intensity_at(submitted), intensity_at(run_at)
            jobs.append(BatchJob.objects.create(
                tenant=tenant, input=batch_input, family=family, variant=variant, mode="standard", tier="green",
                deadline=submitted + timedelta(hours=20), status="succeeded", estimated_seconds=1800,
                planned_start=run_at, planned_end=run_at + timedelta(minutes=30), run_now_g_per_kwh=run_now,
                planned_g_per_kwh=planned, plan_provider="history", plan_method="seasonal-naive",
                plan_measurable=True, plan_explanation="Run in the night's cleanest hour.", last_planned_at=submitted,
                attempts=1, started_at=run_at, finished_at=run_at + timedelta(minutes=25), rows_done=20_000,
                energy_uj=energy_uj, actual_g_per_kwh=planned,
                co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=planned),
                run_now_co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=run_now)))
    return jobs


@dataclass
class Account:
    """A tenant with prices, ledger rows for last month and this month so far, and grid data."""

    tenant: object
    family: object
    variants: dict
    last_month: tuple[datetime, datetime]
    this_month: tuple[datetime, datetime]


@pytest.fixture
def make_account(db, make_tenant, price_book, digits_family):
    """make_account(name=..., tier=...) -> Account, on the real digits family (uploads run)."""
    from billing.periods import Period

    family, baseline, student = digits_family

    def make(*, name="Acme Analytics", slug=None, tier="standard", zone="DE", usage_step_hours=3,
             with_usage=True, green_jobs=0) -> Account:
        tenant = make_tenant(name=name, slug=slug or f"acme-{next(_counter)}", tier=tier, grid_zone=zone,
                             currency="EUR")
        now = timezone.now()
        this_month = Period.containing(now)
        last_month = Period.previous(now=now)
        backdate(tenant, last_month.start - timedelta(days=92))
        if with_usage:
            seed_usage(tenant, {"baseline": baseline, "student": student}, last_month.start,
                       now.replace(minute=0, second=0, microsecond=0), step_hours=usage_step_hours)
        if green_jobs:
            seed_green_jobs(tenant, family, baseline, last_month.start, count=green_jobs)
        return Account(tenant=tenant, family=family, variants={"baseline": baseline, "student": student},
                       last_month=(last_month.start, last_month.end), this_month=(this_month.start, this_month.end))

    return make


@pytest.fixture
def grid_history(db):
    """Stored hourly intensity for DE over the last 40 days (seasonal-naive forecasts repeat it)."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    seed_intensity("DE", now - timedelta(days=40), now)


# --- browser ------------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole session (never a downloaded build)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (own cookies) at desktop size; dialogs (confirm) are accepted."""
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url, accept_downloads=True,
                                  locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.js_errors = errors
    yield tab
    context.close()


def screenshot(tab, name: str) -> None:
    """Full-page screenshots at desktop and phone width into test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        tab.set_viewport_size(size)
        tab.wait_for_timeout(150)  # charts resize on the next animation frame
        tab.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True, animations="disabled")
    tab.set_viewport_size(DESKTOP)


def sign_in(tab, username: str, password: str = PASSWORD) -> None:
    tab.goto("/portal/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_load_state()
