"""Tasks only the test worker loads (celery worker --include tests.celery_tasks)."""

import os

from celery import shared_task


@shared_task(name="tests.crash_worker", acks_late=True, reject_on_worker_lost=True)
def crash_worker() -> None:
    os._exit(1)  # a poison task: kills the worker process that runs it


@shared_task(name="tests.always_fails", max_retries=2, default_retry_delay=0, bind=True)
def always_fails(self) -> None:
    try:
        raise ValueError("broken on purpose")
    except ValueError as exc:
        raise self.retry(exc=exc, countdown=0) from exc
