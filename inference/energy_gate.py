"""The energy gate for model changes: profile a candidate ONNX model exactly as the
registry profiles variants, compare it with the family's current default in the same
run, and say whether it may ship.

Same batch size, thread count and warm-up as the registry (inference.pipeline
profiling); each model is profiled `rounds` times, alternating candidate and default so
machine noise hits both alike; the verdict uses the lowest energy of the rounds, and the
spread (min-max) is reported. Fails when the candidate's energy per 1,000 predictions grows by more
than `max_increase`, or its accuracy on the family's held-out evaluation set is below
the family's floor.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from carbon import units
from inference import runtime
from inference.models import ModelFamily
from inference.pipeline import accuracy_measure, profile_model
from inference.registry import artifact_path

DEFAULT_ROUNDS = 5


class GateError(ValueError):
    """The candidate cannot be evaluated (unreadable, wrong inputs, unknown family)."""


@dataclass(frozen=True)
class Measured:
    # The lowest of the rounds (as timeit does): contention on a shared machine only
    # ever adds CPU time, so the minimum is the most repeatable estimate of the model's
    # own cost; the spread shows how noisy the run was.
    energy_per_1k_uj: int
    energy_min_uj: int
    energy_max_uj: int
    latency_p50_us: int
    accuracy: str  # Decimal as text, 6 places


@dataclass(frozen=True)
class GateResult:
    family: str
    default_variant: str
    candidate_sha256: str
    max_increase: str  # fraction, e.g. "0.05"
    accuracy_floor: str
    default: Measured
    candidate: Measured
    energy_change: str  # fraction, e.g. "-0.512300"
    passed: bool
    reasons: list[str]
    method: str  # the power model and profiling parameters
    rounds: int

    def as_json(self) -> dict:
        return asdict(self)


def evaluation_set(*, family: ModelFamily) -> tuple[np.ndarray, np.ndarray]:
    """The family's held-out evaluation rows and labels, rebuilt from the shipped data."""
    if family.name != "digits-classifier":
        raise GateError(f"no evaluation set is known for family {family.name!r}")
    from inference.pipeline import build
    from inference.pipeline.dataset import digits_load

    config = build.FULL
    data = digits_load(seed=config.seed, eval_fraction=config.eval_fraction)
    return data.X_eval, data.y_eval


def _measure(path: Path, rows: np.ndarray, labels: np.ndarray, profiles: list) -> Measured:
    energies = sorted(p.energy_per_1k_uj for p in profiles)
    return Measured(
        energy_per_1k_uj=energies[0], energy_min_uj=energies[0], energy_max_uj=energies[-1],
        latency_p50_us=int(statistics.median(p.latency_p50_us for p in profiles)),
        accuracy=str(accuracy_measure(path=path, rows=rows, labels=labels)),
    )


def energy_check(*, candidate: bytes, family_name: str, max_increase: Decimal = Decimal("0.05"),
                 rounds: int = DEFAULT_ROUNDS) -> GateResult:
    """Raises GateError for an unknown family, a family without a default, or a
    candidate that is not an ONNX model taking the family's inputs."""
    family = ModelFamily.objects.select_related("default_variant__artifact").filter(name=family_name).first()
    if family is None:
        raise GateError(f"no model family {family_name!r}")
    if family.default_variant is None:
        raise GateError(f"family {family_name!r} has no default variant to compare with")
    if rounds < 1:
        raise GateError("rounds must be at least 1")
    rows, labels = evaluation_set(family=family)
    default_path = artifact_path(family.default_variant.artifact)
    with tempfile.TemporaryDirectory(prefix="greentier-gate-") as tmp:
        candidate_path = Path(tmp) / "candidate.onnx"
        candidate_path.write_bytes(candidate)
        try:
            signature = runtime.input_signature(candidate_path)
        except runtime.RuntimeError_ as exc:
            raise GateError(f"the candidate is not a loadable ONNX model: {exc}") from None
        expected = family.default_variant.input_schema.get("shape", [None, rows.shape[1]])[-1]
        if signature["shape"][-1] not in (None, expected):
            raise GateError(f"the candidate takes {signature['shape'][-1]} features; the family takes {expected}")
        default_profiles, candidate_profiles = [], []
        try:
            for _ in range(rounds):  # alternate, so noise hits both alike
                default_profiles.append(profile_model(path=default_path, rows=rows))
                candidate_profiles.append(profile_model(path=candidate_path, rows=rows))
            default = _measure(default_path, rows, labels, default_profiles)
            measured = _measure(candidate_path, rows, labels, candidate_profiles)
        except runtime.RuntimeError_ as exc:
            raise GateError(str(exc)) from None

    change = (Decimal(measured.energy_per_1k_uj) / Decimal(default.energy_per_1k_uj) - 1).quantize(Decimal("0.000001"))
    reasons = []
    if change > max_increase:
        reasons.append(f"energy per 1,000 predictions grows {change:.1%}, above the allowed {max_increase:.1%}")
    if Decimal(measured.accuracy) < family.accuracy_floor:
        reasons.append(f"accuracy {Decimal(measured.accuracy):.4f} is below the family's floor "
                       f"{family.accuracy_floor:.4f}")
    profile = default_profiles[0]
    return GateResult(
        family=family.name, default_variant=family.default_variant.name,
        candidate_sha256=hashlib.sha256(candidate).hexdigest(), max_increase=str(max_increase),
        accuracy_floor=str(family.accuracy_floor), default=default, candidate=measured, energy_change=str(change),
        passed=not reasons, reasons=reasons, rounds=rounds,
        method=f"{profile.energy_method}; batch {profile.batch_size}, {profile.threads} thread, "
               f"{profile.warmup} warm-up + {profile.repetitions} timed calls per round, {rounds} rounds",
    )


def _j(uj: int) -> str:
    return f"{units.uj_to_j(uj):.4f}"


def statement_markdown(result: GateResult) -> str:
    d, c = result.default, result.candidate
    verdict = "PASS" if result.passed else "FAIL"
    lines = [
        f"### Energy impact: {verdict}",
        "",
        f"Candidate `{result.candidate_sha256[:12]}` for **{result.family}**, compared with the current default "
        f"`{result.default_variant}` on the family's held-out evaluation set.",
        "",
        "| | default | candidate | change |",
        "|---|---:|---:|---:|",
        f"| energy per 1,000 predictions (J), best of {result.rounds} | {_j(d.energy_per_1k_uj)} | {_j(c.energy_per_1k_uj)} | "
        f"{Decimal(result.energy_change):+.1%} |",
        f"| spread over {result.rounds} rounds (J) | {_j(d.energy_min_uj)}-{_j(d.energy_max_uj)} | "
        f"{_j(c.energy_min_uj)}-{_j(c.energy_max_uj)} | |",
        f"| latency per batch, p50 (us) | {d.latency_p50_us} | {c.latency_p50_us} | |",
        f"| accuracy | {Decimal(d.accuracy):.4f} | {Decimal(c.accuracy):.4f} | "
        f"{(Decimal(c.accuracy) - Decimal(d.accuracy)) * 100:+.2f} pts |",
        "",
        f"Thresholds: energy may grow at most {Decimal(result.max_increase):.1%}; accuracy floor "
        f"{Decimal(result.accuracy_floor):.4f}.",
    ]
    if result.reasons:
        lines += ["", "Why it fails:"] + [f"- {reason}" for reason in result.reasons]
    lines += ["", f"<sub>Measured with {result.method}.</sub>"]
    return "\n".join(lines) + "\n"


def statement_text(result: GateResult) -> str:
    d, c = result.default, result.candidate
    out = [
        f"energy check {'PASSED' if result.passed else 'FAILED'}: {result.family}, candidate "
        f"{result.candidate_sha256[:12]} vs default {result.default_variant}",
        f"  energy per 1,000 predictions: {_j(d.energy_per_1k_uj)} J -> {_j(c.energy_per_1k_uj)} J "
        f"({Decimal(result.energy_change):+.1%}; allowed +{Decimal(result.max_increase):.1%})",
        f"  accuracy: {Decimal(d.accuracy):.4f} -> {Decimal(c.accuracy):.4f} (floor {Decimal(result.accuracy_floor):.4f})",
    ]
    out += [f"  - {reason}" for reason in result.reasons]
    return "\n".join(out) + "\n"


def statement(result: GateResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.as_json(), indent=2) + "\n"
    if fmt == "markdown":
        return statement_markdown(result)
    return statement_text(result)
