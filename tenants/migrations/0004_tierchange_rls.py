from django.db import migrations

from tenants.rls import EnableTenantRLS


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_tierchange")]

    operations = [EnableTenantRLS("tierchange")]
