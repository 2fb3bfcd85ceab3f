from __future__ import annotations

from ops.models import DeadLetter


def dead_letter_record(*, task_id: str, task_name: str, args, kwargs, reason: str, deliveries: int = 0,
                       error: str = "") -> DeadLetter:
    """Record a dead task once per (task id, reason); recording again updates it."""
    letter, _ = DeadLetter.objects.update_or_create(
        task_id=task_id, reason=reason,
        defaults={"task_name": task_name, "args": list(args or []), "kwargs": dict(kwargs or {}),
                  "deliveries": deliveries, "error": error[:10_000]})
    return letter
