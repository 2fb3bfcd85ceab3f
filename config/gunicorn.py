"""gunicorn settings for production and `make cluster`. Every value can be overridden
with GUNICORN_* environment variables (or gunicorn's own command-line flags)."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers, one per core: a request is CPU-bound (parse, infer, serialise), and
# onnxruntime runs one intra-op thread per worker (docs/benchmarks.md).
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))  # time to flush metering
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
access_log_format = '{"remote":"%(h)s","request":"%(r)s","status":%(s)s,"bytes":%(B)s,"ms":%(M)s,"request_id":"%({x-request-id}o)s"}'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the Prometheus multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
