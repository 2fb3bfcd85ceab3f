from django.db import migrations

from tenants.rls import EnableTenantRLS


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [
        EnableTenantRLS("slaterms"),
        EnableTenantRLS("slaevaluation"),
        EnableTenantRLS("report"),
    ]
