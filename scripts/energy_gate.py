"""The project's own CI energy gate (make energy-gate, run by .ci/run).

Builds the model family from scratch into a throwaway SQLite registry, then runs
`energy_check` on every variant the pipeline produced against the family default:
a compressed variant that uses more energy than the default (beyond --max-increase),
or falls below the accuracy floor, fails the build. The statements are written to
test-artifacts/energy-gate.md, ready for a pull-request description.
"""

from __future__ import annotations

import os
import sys
import tempfile
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
workdir = Path(tempfile.mkdtemp(prefix="greentier-energy-gate-"))
os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1", CARBON_OFFLINE="1",
                  DATABASE_URL=f"sqlite:///{workdir / 'registry.sqlite3'}", MEDIA_ROOT=str(workdir / "media"))
os.environ.pop("CELERY_BROKER_URL", None)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from inference.models import ModelFamily  # noqa: E402
from inference.registry import artifact_path, family_variants  # noqa: E402


def main() -> int:
    max_increase = sys.argv[1] if len(sys.argv) > 1 else "5%"
    call_command("migrate", "--no-input", verbosity=0)
    call_command("build_models", stdout=StringIO())
    family = ModelFamily.objects.get(name="digits-classifier")
    report, failed = ["# Energy gate: digits-classifier variants vs the default", ""], []
    for variant in family_variants(family=family):
        if variant.id == family.default_variant_id:
            continue
        out = StringIO()
        try:
            call_command("energy_check", str(artifact_path(variant.artifact)), "--family", family.name,
                         "--max-increase", max_increase, "--format", "markdown", stdout=out)
        except SystemExit as exc:
            if exc.code:
                failed.append(variant.name)
        report += [f"## {variant.name} ({variant.technique})", "", out.getvalue()]
        print(f"{variant.name}: {'FAIL' if variant.name in failed else 'pass'}")
    target = ROOT / "test-artifacts" / "energy-gate.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(report))
    print(f"energy gate: {len(failed)} failing variant(s); statements in {target.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
