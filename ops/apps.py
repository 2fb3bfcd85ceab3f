from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Platform operations: the dead-letter record of Celery tasks that could not run."""

    name = "ops"
    default_auto_field = "django.db.models.BigAutoField"
