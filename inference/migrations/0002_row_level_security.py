from django.db import migrations

from tenants.rls import EnableTenantRLS


class Migration(migrations.Migration):
    dependencies = [("inference", "0001_initial")]

    operations = [EnableTenantRLS("usagehour")]
