"""Prepare the embedded demo: a demo tenant, its API key, and the model registry.

Idempotent: the first run creates everything (and builds the models, about a minute);
later runs reuse them and print the same key, kept in var/demo-api-key (demo only).
"""

from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.selectors import api_key_authenticate, tenant_get_by_slug
from tenants.services import api_key_create, tenant_create

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo-password"  # nosec B105 - the embedded demo's portal user (DJANGO_DEBUG=1 only), documented


class Command(BaseCommand):
    help = "Create the demo tenant, key and models for the embedded demo (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--skip-models", action="store_true", help="do not build the model registry")

    def handle(self, *args, skip_models, **options):
        tenant = tenant_get_by_slug(slug=DEMO_SLUG) or tenant_create(
            slug=DEMO_SLUG, name="Demo Ltd", grid_zone="GB", tier="green", currency="EUR")
        key_file = Path(settings.VAR_DIR) / "demo-api-key"
        raw_key = key_file.read_text().strip() if key_file.exists() else ""
        if not raw_key or api_key_authenticate(raw_key=raw_key) is None:
            raw_key = api_key_create(tenant=tenant, name="demo", created_by="demo_setup").raw_key
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(raw_key + "\n")
            key_file.chmod(0o600)
        # A portal user for the demo account (demo only; production users are made by staff).
        from django.contrib.auth import get_user_model

        from tenants.services import membership_set

        if settings.DEBUG:  # a known password only ever exists in the embedded demo
            user_model = get_user_model()
            user = user_model.objects.filter(username="demo-admin").first()
            if user is None:
                user = user_model.objects.create_user("demo-admin", password=DEMO_PASSWORD)
            membership_set(tenant=tenant, user=user, role="admin")
        if not skip_models:
            from inference.models import ModelFamily

            if not ModelFamily.objects.exists():
                self.stdout.write("building the demo models (first start only, about a minute)...")
                call_command("build_models", stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"demo tenant: {tenant.slug} (tier {tenant.tier}, zone {tenant.grid_zone})"))
        self.stdout.write("try:  curl -s -X POST http://127.0.0.1:8000/v1/models/digits-classifier/predict \\\n"
                          f"        -H 'Authorization: Bearer {raw_key}' -H 'Content-Type: application/json' \\\n"
                          "        -d '{\"inputs\": [[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]], \"mode\": \"efficiency\"}'")
        self.stdout.write("API docs: http://127.0.0.1:8000/api/docs/")
        if settings.DEBUG:
            self.stdout.write(f"portal: http://127.0.0.1:8000/portal/ (user demo-admin, password {DEMO_PASSWORD}; "
                              "demo only)")
        self.stdout.write("demo API key (shown again on every start; demo only):")
        self.stdout.write(raw_key)
