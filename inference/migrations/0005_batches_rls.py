from django.db import migrations

from tenants.rls import EnableTenantRLS


class Migration(migrations.Migration):
    dependencies = [("inference", "0004_batches")]

    operations = [EnableTenantRLS("batchinput"), EnableTenantRLS("batchjob")]
