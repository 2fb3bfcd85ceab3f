"""The Celery app: at-least-once delivery with idempotent tasks.

- acks_late + reject_on_worker_lost: a task whose worker dies is delivered again;
  every task is written to be safe to run twice (STYLE.md).
- A bounded number of deliveries per task id (CELERY_MAX_DELIVERIES): a poison task that
  keeps killing its worker is recorded in ops.DeadLetter and dropped instead of looping.
- Tasks that fail after their retries are recorded in ops.DeadLetter too.
- Queues: "online" (small, latency-sensitive work), "batch" (batch jobs), "monthly"
  (invoice and report runs), so a month-end run never delays online-adjacent work.
"""

import logging
import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)


class GreentierTask(Task):
    def __call__(self, *args, **kwargs):
        deliveries = self._count_delivery()
        limit = self.app.conf.get("max_deliveries", 5)
        if deliveries > limit:
            from ops.services import dead_letter_record

            dead_letter_record(task_id=self.request.id, task_name=self.name, args=args, kwargs=kwargs,
                               reason="poison", deliveries=deliveries,
                               error=f"delivered {deliveries} times (limit {limit}); not run again")
            logger.error("poison task %s[%s] dropped after %s deliveries", self.name, self.request.id, deliveries)
            return None
        return super().__call__(*args, **kwargs)

    def _count_delivery(self) -> int:
        """Deliveries of this task id so far, counted in the broker's Redis (0 when eager)."""
        if self.request.is_eager or not self.request.id:
            return 0
        broker = self.app.conf.broker_url or ""
        if not broker.startswith("redis"):
            return 0
        try:
            import redis

            client = redis.Redis.from_url(broker, socket_timeout=1, socket_connect_timeout=1)
            key = f"greentier:deliveries:{self.request.id}"
            count = client.incr(key)
            client.expire(key, 7 * 24 * 3600)
            return int(count)
        except Exception:  # counting must never stop a task from running
            return 0

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from ops.services import dead_letter_record

        try:
            dead_letter_record(task_id=task_id, task_name=self.name, args=args, kwargs=kwargs, reason="failed",
                               error=f"{type(exc).__name__}: {exc}\n{einfo}")
        except Exception:
            logger.exception("could not record dead letter for %s[%s]", self.name, task_id)


app = Celery("greentier", task_cls=GreentierTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
