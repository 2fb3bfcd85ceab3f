from django.db import models


class DeadLetter(models.Model):
    """A task that failed for good (retries exhausted) or was poison (delivered too often,
    e.g. because it kills its worker). Kept for staff to inspect and re-run by hand."""

    class Reason(models.TextChoices):
        FAILED = "failed", "Failed after its retries"
        POISON = "poison", "Delivered more than CELERY_MAX_DELIVERIES times"

    task_id = models.CharField(max_length=64)
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    deliveries = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["task_id", "reason"], name="deadletter_unique_task_reason")]

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id} ({self.reason})"
