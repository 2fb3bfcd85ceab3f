from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tier
from tenants.services import TenantError, tenant_create


class Command(BaseCommand):
    help = "Create a tenant."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--zone", default="GB", help="grid zone, e.g. GB, DE, FR, US-CAL-CISO (default GB)")
        parser.add_argument("--tier", default=Tier.STANDARD, choices=Tier.values)
        parser.add_argument("--currency", default="EUR")

    def handle(self, *args, slug, name, zone, tier, currency, **options):
        try:
            tenant = tenant_create(slug=slug, name=name, grid_zone=zone, tier=tier, currency=currency)
        except TenantError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created tenant {tenant.slug} (tier {tenant.tier}, zone {tenant.grid_zone})")
