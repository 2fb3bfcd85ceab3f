from django.core.management.base import BaseCommand, CommandError

from tenants import keys
from tenants.models import ApiKey
from tenants.scope import all_tenants_scope
from tenants.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, given its prefix (gt_live_<lookup id>) or the whole key."

    def add_arguments(self, parser):
        parser.add_argument("key", help="key prefix as listed, or the full key")

    def handle(self, *args, key, **options):
        parts = key.split("_")
        if len(parts) < 3 or parts[0] != "gt" or len(parts[2]) != keys.LOOKUP_LEN:
            raise CommandError("expected a key prefix like gt_live_XXXXXXXXXXXX or a full key")
        with all_tenants_scope():
            api_key = ApiKey.all_tenants.select_related("tenant").filter(lookup_id=parts[2]).first()
        if api_key is None:
            raise CommandError(f"no API key with prefix gt_{parts[1]}_{parts[2]}")
        api_key = api_key_revoke(tenant=api_key.tenant, key_id=api_key.id, revoked_by="cli")
        self.stdout.write(f"revoked {api_key.prefix} of tenant {api_key.tenant.slug} at {api_key.revoked_at:%Y-%m-%d %H:%M:%S}Z")
