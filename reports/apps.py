from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # SLA credits reach invoices through billing's hook (billing/credits.py); an
        # explicit registration, not a signal. Registering twice is a no-op.
        from billing.credits import sla_credit_provider_register
        from reports.sla import sla_credits

        sla_credit_provider_register(sla_credits)
