from django.core.management.base import BaseCommand, CommandError

from tenants.models import Scope
from tenants.selectors import tenant_get_by_slug
from tenants.services import TenantError, api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--scopes", default="", help=f"comma-separated, from {','.join(Scope.values)} "
                                                        "(default: all)")
        parser.add_argument("--name", default="")

    def handle(self, *args, slug, scopes, name, **options):
        tenant = tenant_get_by_slug(slug=slug)
        if tenant is None:
            raise CommandError(f"no tenant with slug {slug!r}")
        try:
            created = api_key_create(
                tenant=tenant, scopes=[s.strip() for s in scopes.split(",") if s.strip()], name=name,
                created_by="cli",
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created key {created.api_key.prefix} for {tenant.slug} "
                          f"with scopes {','.join(created.api_key.scopes)}; it is shown once:")
        self.stdout.write(created.raw_key)
