"""greentier settings: one module, every deployment difference comes from the environment.

Defaults are the embedded demo (SQLite, Celery eager). Production sets DJANGO_DEBUG=0,
SECRET_KEY, DATABASE_URL, CELERY_BROKER_URL and REDIS_URL. See docs/operations.md.
"""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # runtime data of the embedded demo (gitignored)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-demo-key-only-for-DJANGO_DEBUG=1")
else:
    # Required outside debug: a missing key is a start-up error, never a silent default.
    SECRET_KEY = env.str("SECRET_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenants",
    "carbon",
    "inference",
    "billing",
    "reports",
    "portal",
    "ops",
]

MIDDLEWARE = [
    "inference.middleware.MeteringClockMiddleware",  # first: whole-request CPU time
    "config.observability.RequestIdMiddleware",
    "config.middleware.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.admin_scope.AdminAllTenantsMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = env.str("DJANGO_ROOT_URLCONF", default="config.urls")  # bench/ adds routes
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
# The application should connect as an ordinary role so PostgreSQL row-level security
# applies (superusers and table owners with BYPASSRLS skip it). DATABASE_ASSUME_ROLE
# lets one login (e.g. the owner used for migrations) SET ROLE to the app role.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'greentier.sqlite3'}"),
}
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="greentier_app")
_assume_role = env.str("DATABASE_ASSUME_ROLE", default="")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    if _assume_role:
        DATABASES["default"]["OPTIONS"]["assume_role"] = _assume_role
    if env.bool("DATABASE_POOL", default=False):
        # psycopg's connection pool per process (min 1, max DATABASE_POOL_MAX). The RLS
        # setting is transaction-local, so a pooled connection never carries a tenant.
        DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": env.int("DATABASE_POOL_MAX", default=4),
                                                   "timeout": 5}
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent too: opening a SQLite connection (PRAGMAs, Django's SQL functions) every
    # request or metering flush costs milliseconds.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    VAR_DIR.mkdir(exist_ok=True)
    # The embedded default runs web workers, a metering flusher and Celery against one
    # file: write-ahead logging lets readers run while a flush commits, and IMMEDIATE
    # transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery --------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="greentier"),
                          # Fail fast when Redis is down: callers degrade instead of hanging.
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# No broker configured means the embedded demo: tasks run inline, in the caller.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# At-least-once delivery; every task is idempotent (see STYLE.md, "Celery tasks").
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)  # hard stop of any task
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_MAX_DELIVERIES = env.int("CELERY_MAX_DELIVERIES", default=5)  # then ops.DeadLetter (poison)
# Redis redelivers a task whose worker died once this many seconds pass without an ack;
# it must exceed the longest task and the longest eta (batch plans look up to
# BATCH_MAX_HORIZON_DAYS ahead; duplicates of eta tasks are no-ops).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3 * 3600)}
CELERY_QUEUE_NAMES = ["online", "batch", "monthly"]
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))
CELERY_BEAT_SCHEDULE = {
    # Usage of web processes that died (live processes also recover each other's spools).
    "metering-recover": {"task": "inference.metering_recover", "schedule": 60.0},
    # Fresher forecasts may move green-tier batch windows; re-plan before they start.
    "batch-replan": {"task": "inference.batch_jobs_replan", "schedule": 15 * 60.0},
    # Safety net for lost broker messages and silent workers.
    "batch-dispatch-overdue": {"task": "inference.batch_jobs_dispatch_overdue", "schedule": 5 * 60.0},
    # Energy budgets: batch usage and usage of other processes (web flushes do it too).
    "budgets-evaluate": {"task": "inference.budgets_evaluate", "schedule": 60.0},
    # Retention: archive and delete data past each tenant's policy.
    "retention-run": {"task": "inference.retention_run", "schedule": crontab(hour=3, minute=30)},
    # Finance: the monthly invoice run on the 1st; drafts Stripe could not take are retried hourly.
    "billing-monthly-invoices": {"task": "billing.invoice_run_monthly",
                                 "schedule": crontab(minute=0, hour=2, day_of_month=1)},
    "billing-retry-draft-invoices": {"task": "billing.invoice_retry_drafts", "schedule": crontab(minute=30)},
    # SLA statements after the invoice run; annual carbon reports on 2 January.
    "reports-sla-monthly": {"task": "reports.sla_run_monthly", "schedule": crontab(minute=0, hour=6, day_of_month=1)},
    "reports-carbon-annual": {"task": "reports.carbon_reports_annual",
                              "schedule": crontab(minute=0, hour=4, day_of_month=2, month_of_year=1)},
}
CELERY_TASK_DEFAULT_QUEUE = "online"
CELERY_TASK_ROUTES = {
    "inference.batch_job_run": {"queue": "batch"},
    "billing.stripe_event_process": {"queue": "online"},  # webhooks never wait behind a month-end run
    "billing.*": {"queue": "monthly"},
    "reports.*": {"queue": "monthly"},
}

# --- Auth, i18n, static -------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/portal/login/"
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))

# --- API ------------------------------------------------------------------------------
# Largest accepted request body (bytes); larger bodies get 413 before they are read.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=5 * 1024 * 1024)
# Deepest accepted JSON nesting; real payloads (lists of rows) need 3.
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
API_KEY_ENVIRONMENT = env.str("API_KEY_ENVIRONMENT", default="live")
# Seconds an authenticated key stays cached per process (revocation reaches other
# processes within this time). 0 disables the cache.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)

# --- Inference and metering -------------------------------------------------------------
ONNX_INTRA_OP_THREADS = env.int("ONNX_INTRA_OP_THREADS", default=1)
ONNX_INTER_OP_THREADS = env.int("ONNX_INTER_OP_THREADS", default=1)
PREDICT_MAX_ROWS = env.int("PREDICT_MAX_ROWS", default=1000)
# Grid zone whose intensity prices the CO2e of training runs (build_models).
TRAINING_GRID_ZONE = env.str("TRAINING_GRID_ZONE", default="GB")
# Power model (inference/energy.py): watts per busy core; unset = RAPL, else CodeCarbon's table.
ENERGY_CPU_WATTS_PER_CORE = env.str("ENERGY_CPU_WATTS_PER_CORE", default="")
ENERGY_PUE = env.str("ENERGY_PUE", default="1.2")
# SCI's M term per CPU-second, in micrograms CO2e: a 1,200 kgCO2e server (embodied) over a
# 4-year life and 64 cores is 1.2e9 ug / (4 x 365 x 86,400 s) / 64 = 149 ug per core-second.
EMBODIED_UG_PER_CPU_SECOND = env.str("EMBODIED_UG_PER_CPU_SECOND", default="149")
METERING_SPOOL_DIR = env.path("METERING_SPOOL_DIR", default=str(VAR_DIR / "metering"))
METERING_FLUSH_SECONDS = env.float("METERING_FLUSH_SECONDS", default=1.0)
METERING_FSYNC = env.bool("METERING_FSYNC", default=False)
BUDGET_CACHE_SECONDS = env.float("BUDGET_CACHE_SECONDS", default=10.0)  # enforcement lag per process
COLD_STORAGE_DIR = env.path("COLD_STORAGE_DIR", default=str(VAR_DIR / "cold"))  # retention archives
CANDIDATE_MAX_BYTES = env.int("CANDIDATE_MAX_BYTES", default=20 * 1024 * 1024)  # energy-gate uploads
# Idempotency-Key on predictions (inference/idempotency.py).
IDEMPOTENCY_TTL_SECONDS = env.int("IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=10.0)
# Batch jobs (inference/batches.py).
BATCH_MAX_BYTES = env.int("BATCH_MAX_BYTES", default=50 * 1024 * 1024)
BATCH_MAX_ROWS = env.int("BATCH_MAX_ROWS", default=1_000_000)
BATCH_STARTUP_SECONDS = env.int("BATCH_STARTUP_SECONDS", default=30)
BATCH_DEADLINE_MARGIN_SECONDS = env.int("BATCH_DEADLINE_MARGIN_SECONDS", default=300)
BATCH_MAX_HORIZON_DAYS = env.int("BATCH_MAX_HORIZON_DAYS", default=7)
BATCH_REPLAN_LEAD_SECONDS = env.int("BATCH_REPLAN_LEAD_SECONDS", default=600)
BATCH_STALE_SECONDS = env.int("BATCH_STALE_SECONDS", default=600)
# 5,000 rows of 64 float32 features is 1.3 MB in memory and a few ms of inference for the
# large digits MLP: frequent progress updates, and the per-chunk database write is noise.
BATCH_CHUNK_ROWS = env.int("BATCH_CHUNK_ROWS", default=5000)
# Serve POST /v1/models/{family}/predict at the WSGI level, past the middleware stack
# (config/fastpath.py). Off: every request goes through the full stack.
PREDICT_FAST_PATH = env.bool("PREDICT_FAST_PATH", default=True)
# Benchmarks only: lets bench/serving.py switch metering off per request on one server.
METERING_BENCH_TOGGLE = env.bool("METERING_BENCH_TOGGLE", default=False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "URL_FORMAT_OVERRIDE": None,  # ?format= belongs to endpoints (batch results: csv|parquet)
}
SPECTACULAR_SETTINGS = {
    "TITLE": "greentier API",
    "DESCRIPTION": "Metered, carbon-aware ML predictions. Authenticate with `Authorization: Bearer gt_live_...`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "config.schema.add_error_responses"],
    # Swagger UI is served from the vendored sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Carbon intensity (carbon/conf.py documents every CARBON_* setting) ---------------
ELECTRICITYMAPS_TOKEN = env.str("ELECTRICITYMAPS_TOKEN", default="")
ELECTRICITYMAPS_API_BASE = env.str("ELECTRICITYMAPS_API_BASE", default="https://api.electricitymaps.com")
UK_CARBON_INTENSITY_API_BASE = env.str("UK_CARBON_INTENSITY_API_BASE", default="https://api.carbonintensity.org.uk")
CARBON_PREFERRED_KIND = env.str("CARBON_PREFERRED_KIND", default="lifecycle")
# CARBON_OFFLINE=1: no live grid-data APIs (tests, air-gapped hosts): stored history,
# seasonal-naive forecasts and annual averages only.
CARBON_OFFLINE = env.bool("CARBON_OFFLINE", default=False)
if CARBON_OFFLINE:
    CARBON_PROVIDERS = {"*": ["history", "seasonal-naive", "annual-average"]}

# --- Stripe (secrets only from the environment) --------------------------------------
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # set to localstripe in tests
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=30)
# Printed as the issuer on invoice PDFs: the operator's legal name and address lines
# (INVOICE_ISSUER_ADDRESS="Example Ltd|1 High Street|London"; "|" separates lines).
INVOICE_ISSUER_NAME = env.str("INVOICE_ISSUER_NAME", default="greentier")
INVOICE_ISSUER_ADDRESS = [line for line in env.str("INVOICE_ISSUER_ADDRESS", default="").split("|") if line.strip()]

# --- Security (production) ------------------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Structured logs: one JSON object per line with the request id (LOG_FORMAT=json, the
# default outside debug); LOG_FORMAT=text for people reading a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "config.observability.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"stripe": {"level": "WARNING"}},  # the SDK logs every request at INFO
}
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
