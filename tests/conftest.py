"""Test fixtures: real PostgreSQL (as the ordinary app role), Redis and Celery workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from rest_framework.test import APIClient

from tenants.services import api_key_create, tenant_create

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Create and migrate the test database as the owner, then act as the app role.

    Migrations run as the DATABASE_URL login (the owner, as operators do); every test
    then runs as the ordinary role, so row-level security applies as in production.
    """
    with django_db_blocker.unblock():
        call_command("grant_app_role", verbosity=0)
    options = connections["default"].settings_dict.setdefault("OPTIONS", {})
    options["assume_role"] = settings.DATABASE_APP_ROLE
    connections["default"].close()
    yield
    options.pop("assume_role", None)
    connections["default"].close()


def test_database_url() -> str:
    """DATABASE_URL pointing at the test database (for worker and server processes)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connections["default"].settings_dict["NAME"]))


def service_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (worker, server) running as the app would."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="1",
        SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=test_database_url(),
        DATABASE_ASSUME_ROLE=settings.DATABASE_APP_ROLE,
        CELERY_BROKER_URL=os.environ["REDIS_URL"],
        CELERY_RESULT_BACKEND=os.environ["REDIS_URL"],
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        CARBON_OFFLINE="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


class WorkerProcess:
    def __init__(self, queue: str, log_path: Path):
        self.queue = queue
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.extra_env: dict[str, str] = {}

    def start(self) -> None:
        self._starts = self.log_path.read_bytes().count(b"ready.") if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "prefork", "-c", "1",
             "-Q", self.queue, "-n", f"test-{self.queue}@%h", "--include", "tests.celery_tasks", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "INFO"],
            cwd=ROOT, env=service_env(**self.extra_env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited; see {self.log_path}")
            if self.log_path.read_bytes().count(b"ready.") > self._starts:
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready in {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole worker process group (main process and its children)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker(transactional_db, tmp_path, settings):
    """A real Celery worker process on Redis, consuming a queue private to this test.

    Yields the WorkerProcess; tests route tasks with `queue=worker.queue`. Eager mode
    is switched off for the test so `.delay`/`apply_async` go through the broker.
    """
    from config.celery import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    routes = app.conf.task_routes
    app.conf.task_routes = {}  # everything to this test's private queue
    app.amqp.flush_routes()
    worker = WorkerProcess(queue, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.task_always_eager = True
        app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
        app.conf.task_routes = routes
        app.amqp.flush_routes()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Per-process caches and the usage meter start empty in every test."""
    from inference import emissions, routing
    from inference.metering import meter_discard
    from tenants.selectors import api_key_cache_clear

    api_key_cache_clear()
    routing.routes_cache_clear()
    emissions._cache.clear()
    yield
    meter_discard()
    api_key_cache_clear()


# --- data factories -------------------------------------------------------------------

_counter = iter(range(1, 10**9))


@pytest.fixture
def make_tenant(db):
    def make(**kwargs):
        n = next(_counter)
        kwargs.setdefault("slug", f"tenant-{n}")
        kwargs.setdefault("grid_zone", "GB")
        return tenant_create(**kwargs)

    return make


@pytest.fixture
def make_key(db):
    def make(tenant, scopes=None):
        return api_key_create(tenant=tenant, scopes=scopes)

    return make


@pytest.fixture
def api_client_for(make_key):
    """An APIClient authenticated with a fresh key of the given tenant."""

    def make(tenant, scopes=None):
        client = APIClient()
        created = make_key(tenant, scopes)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.raw_key}")
        client.api_key = created.api_key
        client.raw_key = created.raw_key
        return client

    return make


@pytest.fixture
def make_variant(db):
    """A registered model variant (with a tiny placeholder artifact row) for ledger tests."""
    from decimal import Decimal

    from inference.models import ModelArtifact, ModelFamily, ModelVariant, ModelVersion

    def make(family="digits-classifier", name="baseline", technique="baseline", accuracy="0.980000",
             energy_per_1k_uj=1_000_000, floor="0.950000", make_default=None):
        fam, _ = ModelFamily.objects.get_or_create(name=family, defaults={"accuracy_floor": Decimal(floor)})
        version, _ = ModelVersion.objects.get_or_create(
            family=fam, version=1,
            defaults=dict(dataset_name="sklearn-digits", dataset_version="test", dataset_sha256="0" * 64,
                          train_rows=1347, eval_rows=450))
        n = next(_counter)
        artifact = ModelArtifact.objects.create(sha256=f"{n:064x}", size_bytes=1, path=f"models/test/{n}.onnx")
        variant = ModelVariant.objects.create(
            version=version, name=name, technique=technique, artifact=artifact,
            input_schema={"name": "input", "dtype": "float32", "shape": [None, 64]},
            output_schema={"name": "label", "dtype": "int64"}, accuracy=Decimal(accuracy),
            energy_per_1k_uj=energy_per_1k_uj, energy_method="cpu-model: test", profile_batch_size=32,
            latency_p50_us=100, latency_p95_us=150)
        if make_default or (make_default is None and fam.default_variant_id is None):
            fam.default_variant = variant
            fam.save(update_fields=["default_variant"])
        return variant

    return make


@pytest.fixture
def add_usage(db):
    """Write one ledger row (tests of readers: rating, reports, usage API)."""
    from decimal import Decimal

    from inference.models import UsageHour
    from tenants.scope import tenant_scope

    def add(tenant, variant, hour, *, mode="standard", source="online", predictions=1000, requests=None,
            energy_uj=3_600_000, co2e_ug=200_000, cpu_us=None, intensity="200", embodied_co2e_ug=0):
        with tenant_scope(tenant.id):
            return UsageHour.objects.create(
                tenant=tenant, hour=hour, variant=variant, mode=mode, source=source,
                energy_method="cpu-model: test", predictions=predictions,
                requests=predictions if requests is None else requests,
                cpu_us=cpu_us if cpu_us is not None else energy_uj // 5, inference_cpu_us=0,
                energy_uj=energy_uj, co2e_ug=co2e_ug, embodied_co2e_ug=embodied_co2e_ug,
                intensity_g_per_kwh=Decimal(intensity), intensity_source="test")

    return add
