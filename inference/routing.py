"""Efficiency-mode routing: which variant of a family serves a request in each mode.

- standard: the family's default variant;
- efficiency: the lowest energy per prediction whose accuracy meets the family's floor;
- accurate: the most accurate (ties: the lower energy).

Routes are cached per process for ROUTE_CACHE_SECONDS so the hot path reads no table;
a new default or a new model version is served within that time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from inference.models import Mode, ModelFamily, ModelVariant
from inference.registry import artifact_path, family_variants

ROUTE_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class Route:
    family: str
    family_id: int
    variant_id: int
    variant_name: str
    technique: str
    accuracy: Decimal
    energy_per_1k_uj: int
    path: Path
    sha256: str
    n_features: int
    input_min: float | None
    input_max: float | None


class UnknownFamily(LookupError):
    pass


def choose_variant(*, family: ModelFamily, variants: list[ModelVariant], mode: str) -> ModelVariant:
    """The routing rule itself (pure: no database)."""
    if not variants:
        raise UnknownFamily(family.name)
    if mode == Mode.EFFICIENCY:
        eligible = [v for v in variants if v.accuracy >= family.accuracy_floor]
        if eligible:
            return min(eligible, key=lambda v: (v.energy_per_1k_uj, -v.accuracy, v.id))
        mode = Mode.STANDARD  # nothing meets the floor: serve the default, never a worse model
    if mode == Mode.ACCURATE:
        return max(variants, key=lambda v: (v.accuracy, -v.energy_per_1k_uj, -v.id))
    default = next((v for v in variants if v.id == family.default_variant_id), None)
    return default or next((v for v in variants if v.technique == "baseline"), variants[0])


def _route(family: ModelFamily, variant: ModelVariant) -> Route:
    schema = variant.input_schema or {}
    shape = schema.get("shape") or [None, 0]
    return Route(
        family=family.name, family_id=family.id, variant_id=variant.id, variant_name=variant.name, technique=variant.technique,
        accuracy=variant.accuracy, energy_per_1k_uj=variant.energy_per_1k_uj, path=artifact_path(variant.artifact),
        sha256=variant.artifact.sha256, n_features=int(shape[-1] or 0),
        input_min=schema.get("min"), input_max=schema.get("max"),
    )


_cache: dict[str, tuple[float, dict[str, Route]]] = {}
_lock = threading.Lock()


def routes_for(*, family_name: str) -> dict[str, Route]:
    """{mode: Route} for a family. Raises UnknownFamily."""
    hit = _cache.get(family_name)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    with _lock:
        family = ModelFamily.objects.filter(name=family_name).first()
        if family is None:
            raise UnknownFamily(family_name)
        variants = family_variants(family=family)
        routes = {mode: _route(family, choose_variant(family=family, variants=variants, mode=mode))
                  for mode in Mode.values}
        _cache[family_name] = (time.monotonic() + ROUTE_CACHE_SECONDS, routes)
        return routes


def routes_cache_clear() -> None:
    _cache.clear()
