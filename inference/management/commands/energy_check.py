"""python manage.py energy_check MODEL.onnx --family F [--max-increase 5%] [--format text|json|markdown]

Exit status: 0 the candidate passes, 1 it fails the gate (energy or accuracy), 2 it
cannot be evaluated (unreadable file, unknown family, bad arguments).
"""

from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.energy_gate import DEFAULT_ROUNDS, GateError, energy_check, statement


def parse_increase(text: str) -> Decimal:
    """'5%', '5' and '0.05' all mean five percent."""
    try:
        if text.endswith("%"):
            value = Decimal(text[:-1]) / 100
        else:
            value = Decimal(text)
            value = value / 100 if value >= 1 else value
    except InvalidOperation:
        raise CommandError(f"--max-increase must be a percentage like 5% (got {text!r})", returncode=2) from None
    if value < 0:
        raise CommandError("--max-increase must not be negative", returncode=2)
    return value


class Command(BaseCommand):
    help = "Gate a model change on energy: profile a candidate ONNX model against the family's default."

    def add_arguments(self, parser):
        parser.add_argument("model", type=Path, help="candidate ONNX file")
        parser.add_argument("--family", required=True)
        parser.add_argument("--max-increase", default="5%", help="allowed growth of energy per prediction (5%%)")
        parser.add_argument("--format", dest="fmt", choices=["text", "json", "markdown"], default="text")
        parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="profiling rounds per model (5)")
        parser.add_argument("--output", type=Path, help="also write the statement to this file")

    def handle(self, *args, model: Path, family: str, max_increase: str, fmt: str, rounds: int, output, **options):
        if not model.is_file():
            raise CommandError(f"{model}: no such file", returncode=2)
        try:
            result = energy_check(candidate=model.read_bytes(), family_name=family,
                                  max_increase=parse_increase(max_increase), rounds=rounds)
        except GateError as exc:
            raise CommandError(str(exc), returncode=2) from None
        text = statement(result, fmt)
        self.stdout.write(text, ending="")
        if output:
            output.write_text(text)
        if not result.passed:
            raise SystemExit(1)
