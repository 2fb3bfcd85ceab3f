from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from inference.metering import recover_orphans


class Command(BaseCommand):
    help = ("Add the usage spooled by dead server processes to the ledger (running servers do this "
            "themselves every 30 s). Safe to run at any time, also while servers run.")

    def handle(self, *args, **options):
        spool_dir = Path(settings.METERING_SPOOL_DIR)
        recovered = recover_orphans(spool_dir)
        self.stdout.write(f"recovered {recovered} spool file(s) from {spool_dir}")
