from django.db import migrations

from tenants.rls import EnableTenantRLS


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        EnableTenantRLS("billingaccount"),
        EnableTenantRLS("invoice"),
        EnableTenantRLS("invoiceline"),
        EnableTenantRLS("invoicestatuschange"),
    ]
