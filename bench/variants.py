"""Model variants: accuracy, energy per 1,000 predictions and latency of each variant of
digits-classifier, for inference alone and for the whole metered request.

    DJANGO_SETTINGS_MODULE=config.settings DJANGO_DEBUG=1 .venv/bin/python bench/variants.py \
        [--rounds 5] [--requests 300] [--quick] [--demo-db]

- inference alone: profile_model at the registry's profiling batch size (32 rows, one
  thread), the routine build_models stores; `--rounds` interleaved rounds over the
  variants, median per variant, so load from other processes hits all variants alike;
- whole request: POST /v1/models/digits-classifier/predict into the production WSGI
  application in this process (bench/wsgi_client.py: the predict fast path, as under
  gunicorn) at batch 1 and 32, each variant in turn made the family default and served
  as mode "standard"; energy is what metering charged (the response's usage.energy_uj:
  thread CPU time from the start of the request to the end of the prediction x the same
  power model), median per request, per 1,000 predictions;
- efficiency-mode variant: inference.routing.choose_variant's rule (lowest energy per
  prediction whose accuracy meets the family floor), applied to this run's figures.

By default everything runs in a temporary SQLite database and media directory, deleted
at exit (a full build_models, ~20 s). --demo-db uses the configured database instead
(DATABASE_URL, else the embedded demo's SQLite; build_models is idempotent there) and
leaves a "bench-variants-<pid>" tenant and key in it. Last line: JSON with
efficiency_energy_ratio and efficiency_accuracy_loss_pts (target: <= 0.5 and <= 1.0).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAMILY = "digits-classifier"


def _setup(*, demo_db: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if not demo_db:
        tmp = Path(tempfile.mkdtemp(prefix="greentier-bench-variants-"))
        atexit.register(shutil.rmtree, tmp, True)
        os.environ.update(DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}", MEDIA_ROOT=str(tmp / "media"),
                          METERING_SPOOL_DIR=str(tmp / "metering"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    # Intensity from the annual average only: this bench measures serving, and a live
    # grid API call (cached per hour in production) must not land in a timed request.
    settings.CARBON_PROVIDERS = {"*": ["annual-average"]}


def _median(values) -> float:
    return float(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (profiles and requests)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per variant and batch size")
    parser.add_argument("--quick", action="store_true", help="build with build_models --quick")
    parser.add_argument("--demo-db", action="store_true", help="use the configured database, not a temporary one")
    args = parser.parse_args()
    _setup(demo_db=args.demo_db)

    from django.core.management import call_command
    from bench.wsgi_client import WsgiClient

    from inference import routing
    from inference.energy import power_model
    from inference.models import Mode, ModelFamily
    from inference.pipeline import PROFILE_BATCH_SIZE, profile_model
    from inference.pipeline.build import FULL
    from inference.pipeline.dataset import digits_load
    from inference.registry import artifact_path, family_variants
    from tenants.services import api_key_create, tenant_create

    call_command("migrate", verbosity=0, interactive=False)
    t0 = time.monotonic()
    call_command("build_models", *(["--quick"] if args.quick else []), stdout=sys.stderr)
    print(f"build_models: {time.monotonic() - t0:.1f} s", file=sys.stderr)

    family = ModelFamily.objects.get(name=FAMILY)
    variants = family_variants(family=family)
    default_id = family.default_variant_id
    baseline = next(v for v in variants if v.technique == "baseline")
    data = digits_load(seed=FULL.seed, eval_fraction=FULL.eval_fraction)  # --quick splits alike

    # -- inference alone, interleaved rounds --------------------------------------------------
    energy = {v.id: [] for v in variants}
    p50 = {v.id: [] for v in variants}
    p95 = {v.id: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            profile = profile_model(path=artifact_path(v.artifact), rows=data.X_eval)
            energy[v.id].append(profile.energy_per_1k_uj)
            p50[v.id].append(profile.latency_p50_us)
            p95[v.id].append(profile.latency_p95_us)

    # -- whole request ---------------------------------------------------------------------------
    tenant = tenant_create(slug=f"bench-variants-{os.getpid()}", grid_zone="GB")
    key = api_key_create(tenant=tenant, name="bench/variants.py").raw_key
    client = WsgiClient(api_key=key)
    rows = data.X_eval.astype(int).tolist()
    charged = {(v.id, batch): [] for v in variants for batch in (1, 32)}
    wall = {(v.id, batch): [] for v in variants for batch in (1, 32)}
    per_round = max(1, args.requests // args.rounds)
    try:
        for round_no in range(args.rounds):  # interleaved, like the profiles
            for v in variants:
                ModelFamily.objects.filter(id=family.id).update(default_variant=v)
                routing.routes_cache_clear()
                for batch in (1, 32):
                    body = json.dumps({"inputs": rows[:batch], "mode": Mode.STANDARD}).encode()
                    warmup = 20 if round_no == 0 else 5  # first: session load, caches
                    for i in range(warmup + per_round):
                        w0 = time.perf_counter_ns()
                        response = client.post(f"/v1/models/{FAMILY}/predict", body)
                        w1 = time.perf_counter_ns()
                        if response.status_code != 200:
                            raise SystemExit(f"predict returned {response.status_code}: {response.content[:200]!r}")
                        result = response.json()
                        if result["model"]["variant"] != v.name:
                            raise SystemExit(f"served {result['model']['variant']}, expected {v.name}")
                        if i >= warmup:
                            charged[(v.id, batch)].append(result["usage"]["energy_uj"])
                            wall[(v.id, batch)].append((w1 - w0) / 1000)
    finally:
        ModelFamily.objects.filter(id=family.id).update(default_variant_id=default_id)
        routing.routes_cache_clear()
        from inference.metering import usage_flush

        usage_flush()
    request_uj = {k: round(_median(values) * 1000 / k[1]) for k, values in charged.items()}
    request_wall_us = {k: round(_median(values)) for k, values in wall.items()}

    # -- report ------------------------------------------------------------------------------------
    measured = {v.id: round(_median(energy[v.id])) for v in variants}
    family.refresh_from_db()
    for v in variants:  # this run's figures drive the efficiency choice, as the registry's would
        v.energy_per_1k_uj = measured[v.id]
    efficiency = routing.choose_variant(family=family, variants=variants, mode=Mode.EFFICIENCY)
    base_uj = measured[baseline.id]

    print(f"{FAMILY} v{baseline.version.version}, floor {family.accuracy_floor}, power model: {power_model().method}")
    print(f"inference alone: batch {PROFILE_BATCH_SIZE}, 1 thread, {args.rounds} rounds x 200 batches (median); "
          f"whole request: production WSGI app in-process, {per_round * args.rounds} requests in {args.rounds} rounds "
          "(median of metered energy_uj)")
    header = ("| variant | technique | accuracy | weights | inference J/1k (b32) | vs baseline | p50 / p95 us per batch "
              "| request J/1k b1 | request J/1k b32 | request b32 vs baseline | request wall us b1 / b32 |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for v in variants:
        mark = " (efficiency)" if v.id == efficiency.id else ""
        print(f"| {v.name}{mark} | {v.technique} | {v.accuracy:.4f} | {v.parameters:,} | "
              f"{measured[v.id] / 1e6:.4f} | {measured[v.id] / base_uj:.1%} | "
              f"{round(_median(p50[v.id]))} / {round(_median(p95[v.id]))} | "
              f"{request_uj[(v.id, 1)] / 1e6:.3f} | {request_uj[(v.id, 32)] / 1e6:.4f} | "
              f"{request_uj[(v.id, 32)] / request_uj[(baseline.id, 32)]:.1%} | "
              f"{request_wall_us[(v.id, 1)]} / {request_wall_us[(v.id, 32)]} |")

    ratio = measured[efficiency.id] / base_uj
    loss_pts = float((baseline.accuracy - efficiency.accuracy) * 100)
    print(json.dumps({
        "family": FAMILY,
        "efficiency_variant": efficiency.name,
        "efficiency_energy_ratio": round(ratio, 4),
        "efficiency_accuracy_loss_pts": round(loss_pts, 2),
        "target_met": ratio <= 0.5 and loss_pts <= 1.0,
        "request_energy_ratio_batch1": round(request_uj[(efficiency.id, 1)] / request_uj[(baseline.id, 1)], 4),
        "request_energy_ratio_batch32": round(request_uj[(efficiency.id, 32)] / request_uj[(baseline.id, 32)], 4),
        "inference_energy_per_1k_uj": {v.name: measured[v.id] for v in variants},
        "request_energy_per_1k_uj_batch1": {v.name: request_uj[(v.id, 1)] for v in variants},
        "request_energy_per_1k_uj_batch32": {v.name: request_uj[(v.id, 32)] for v in variants},
        "accuracy": {v.name: float(v.accuracy) for v in variants},
    }))


if __name__ == "__main__":
    main()
