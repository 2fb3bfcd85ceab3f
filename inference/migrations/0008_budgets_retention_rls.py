from django.db import migrations

from tenants.rls import EnableTenantRLS


class Migration(migrations.Migration):
    dependencies = [("inference", "0007_budgets_retention")]

    operations = [EnableTenantRLS("energybudget"), EnableTenantRLS("budgetevent"), EnableTenantRLS("budgetsignoff"),
                  EnableTenantRLS("retentionpolicy")]
