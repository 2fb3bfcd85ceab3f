"""manage.py build_models: train, compress, profile and register a model family."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Build the digits-classifier family: staged training of the baseline, int8, pruned and distilled "
            "variants, ONNX export, accuracy and energy profiles, registration. Idempotent: prints "
            "'up to date' when the newest version was built from the same data and config.")

    def add_arguments(self, parser):
        parser.add_argument("--family", default="digits-classifier", help="model family to build")
        parser.add_argument("--force", action="store_true", help="build a new version even when up to date")
        parser.add_argument("--quick", action="store_true",
                            help="few epochs (tests, smoke runs); still all four techniques")

    def handle(self, *args, family: str, force: bool, quick: bool, **options):
        from inference.pipeline.build import BuildError, family_build

        try:
            family_build(name=family, force=force, quick=quick, progress=self.stdout.write)
        except BuildError as exc:
            raise CommandError(f"build_models: {exc}") from exc
