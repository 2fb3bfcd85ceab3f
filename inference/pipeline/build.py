"""Build a model family: staged training, compression, export, evaluation, profiling and
registration. `family_build` is the entry point (manage.py build_models calls it).

Stages (docs/models.md explains each choice):
1. data: sklearn's 8x8 digits, a stratified held-out evaluation split, and a
   validation split inside the training split for the staged-training decision;
2. subset runs: the baseline network on growing subsets (learning-curve probes);
3. the rule: fit error ~ rows^-b on the probes and train on all rows only when the
   predicted gain is worth it; otherwise the largest subset model is the baseline;
4. compression of the baseline: int8 dynamic quantisation, structured magnitude
   pruning with fine-tuning, a distilled student;
5. every variant exported to ONNX, scored on the held-out split through
   inference.runtime and profiled with profile_model;
6. one transaction registers the version, variants, artifacts and training runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from inference import runtime
from inference.models import ModelFamily, ModelVariant, ModelVersion, Technique, TrainingRun
from inference.pipeline import dataset as ds
from inference.pipeline import export, training
from inference.pipeline.profiling import (
    PROFILE_BATCH_SIZE,
    PROFILE_REPETITIONS,
    PROFILE_WARMUP,
    Profile,
    accuracy_fraction,
    accuracy_measure,
    profile_model,
)
from inference.registry import artifact_path, artifact_store

FAMILY_NAME = "digits-classifier"
FAMILY_DESCRIPTION = ("Handwritten digit classifier: 8x8 images as 64 grey levels 0..16 (scikit-learn's digits "
                      "dataset), returns the digit 0-9.")
# Where training runs are assumed to draw power, for their CO2e (an annual average).
DEFAULT_TRAINING_ZONE = "GB"
VARIANT_PREFIX = {Technique.BASELINE: "baseline", Technique.INT8_QUANTISED: "int8",
                  Technique.PRUNED: "pruned", Technique.DISTILLED: "distilled"}


class BuildError(Exception):
    """The build could not finish; the message says which stage and why, in one line."""


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides what a build produces. Its fingerprint, with the dataset
    hash, identifies a version: an identical newest version means "up to date"."""

    seed: int = 0
    # BLAS threads for training. One: measured on this 2-core machine, a 1,024-unit layer
    # trains with 34% less CPU time (so energy) on one thread than on two, for 34% more
    # wall time; with other load on the machine OpenBLAS's spinning threads made the
    # student's training about 10x slower on two threads. Also part of the fingerprint: the
    # thread count changes float summation order, so the bytes.
    training_threads: int = 1
    eval_fraction: float = 0.25  # held-out rows: 450 of 1,797
    validation_fraction: float = 0.2  # of the training split, for the staged-training decision only
    # 64-1024-1024-10: ~1.1 M multiply-adds per row, ~30 us per row at batch 32 on one
    # thread, so the model (not the framework) dominates inference and compression pays.
    hidden: tuple[int, ...] = (1024, 1024)
    max_iter: int = 30  # epochs; 40 and 60 were no more accurate in trials, and cost more
    # Probe sizes as fractions of the training split; the largest is the subset run
    # whose model becomes the baseline when the full run is skipped.
    probe_fractions: tuple[float, ...] = (0.08, 0.16, 0.24)
    min_gain_pts: float = 0.5  # the full run must be predicted to add at least this
    prune_keep_fraction: float = 0.25  # keep 256 of 1,024 units per hidden layer
    finetune_max_iter: int = 10
    student_hidden: tuple[int, ...] = (64,)
    student_max_iter: int = 100
    floor_margin_pts: int = 1  # family floor = baseline accuracy - 1 point, rounded down to 0.001
    profile_batch_size: int = PROFILE_BATCH_SIZE
    profile_repetitions: int = PROFILE_REPETITIONS
    profile_warmup: int = PROFILE_WARMUP
    revision: int = 1  # bump when the code changes what a build produces for the same settings

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.as_json().encode()).hexdigest()


FULL = BuildConfig()
# For tests and smoke runs: same architecture and all four techniques, few epochs.
QUICK = dataclasses.replace(FULL, max_iter=6, finetune_max_iter=3, student_max_iter=20, profile_repetitions=50)


@dataclass
class _Run:
    stage: str
    description: str
    train_rows: int
    accuracy: Decimal  # on the held-out split
    measurement: training.Measurement
    decision: str = ""
    produces: str | None = None  # technique of the variant it produced


@dataclass
class _Candidate:
    technique: str
    content: bytes
    accuracy: Decimal
    profile: Profile
    parameters: int
    run: _Run


@dataclass(frozen=True)
class BuildResult:
    family: ModelFamily
    version: ModelVersion
    variants: list[ModelVariant] = field(default_factory=list)
    up_to_date: bool = False


def _sklearn_accuracy(model: MLPClassifier, X: np.ndarray, y: np.ndarray) -> Decimal:
    return accuracy_fraction(correct=int(np.sum(model.predict(ds.scaled(X)) == y)), total=len(y))


def version_up_to_date(*, family_name: str, data: ds.Dataset, config: BuildConfig) -> ModelVersion | None:
    """The family's newest version if it was built from this data with this config and
    all its artifact files are present; else None (a build is due)."""
    latest = (ModelVersion.objects.filter(family__name=family_name).order_by("-version")
              .prefetch_related("variants__artifact").first())
    if latest is None or latest.dataset_sha256 != data.sha256 or latest.dataset_version != data.version:
        return None
    if latest.config_sha256 != config.fingerprint():
        return None
    variants = list(latest.variants.all())
    if {v.technique for v in variants} != set(VARIANT_PREFIX):
        return None
    if not all(artifact_path(v.artifact).exists() for v in variants):
        return None
    return latest


def floor_for(*, baseline_accuracy: Decimal, margin_pts: int) -> Decimal:
    """Family accuracy floor: baseline minus `margin_pts` points, rounded down to 0.001."""
    return (baseline_accuracy - Decimal(margin_pts) / 100).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)


class _Builder:
    def __init__(self, *, config: BuildConfig, data: ds.Dataset, intensity: training.GridIntensity,
                 workdir: Path, progress: Callable[[str], None]):
        self.config = config
        self.data = data
        self.intensity = intensity
        self.workdir = workdir
        self.progress = progress
        self.runs: list[_Run] = []
        self.candidates: dict[str, _Candidate] = {}

    # -- staged training ------------------------------------------------------------------

    def train_baseline(self) -> MLPClassifier:
        c, data = self.config, self.data
        X_pool, X_val, y_pool, y_val = train_test_split(
            data.X_train, data.y_train, test_size=c.validation_fraction, stratify=data.y_train, random_state=c.seed)
        n_train = len(data.X_train)
        probe_rows, probe_acc, probe_models = [], [], []
        for i, fraction in enumerate(c.probe_fractions, start=1):
            rows = round(fraction * n_train)
            if rows >= len(X_pool):
                raise BuildError(f"probe of {rows} rows is larger than the {len(X_pool)}-row probe pool")
            X_sub, _, y_sub, _ = train_test_split(X_pool, y_pool, train_size=rows, stratify=y_pool,
                                                  random_state=c.seed)
            model, measurement = training.measured(
                lambda X=X_sub, y=y_sub: training.mlp_train(X=ds.scaled(X), y=y, hidden=c.hidden,
                                                           max_iter=c.max_iter, seed=c.seed),
                intensity=self.intensity)
            val_acc = float(model.score(ds.scaled(X_val), y_val))
            run = _Run(stage=TrainingRun.Stage.SUBSET, train_rows=rows,
                       description=f"subset run {i}/{len(c.probe_fractions)}: {_shape(c.hidden)} on {rows} rows "
                                   f"({fraction:.0%} of the training split), {c.max_iter} epochs",
                       accuracy=_sklearn_accuracy(model, data.X_eval, data.y_eval), measurement=measurement,
                       decision=f"learning-curve probe (validation accuracy {val_acc:.4f}); the decision is "
                                f"recorded on the largest subset run")
            self.runs.append(run)
            probe_rows.append(rows)
            probe_acc.append(val_acc)
            probe_models.append(model)
            self.progress(f"  subset run {i}: {rows} rows -> validation {val_acc:.4f}, held-out {run.accuracy:.4f} "
                          f"({_joules(measurement.energy_uj)}, {measurement.duration_us / 1e6:.1f} s)")

        curve = training.learning_curve_fit(rows=probe_rows, accuracies=probe_acc, eval_rows=len(y_val))
        subset_run = self.runs[-1]
        decision = training.full_run_decide(
            curve=curve, subset_rows=probe_rows[-1], subset_accuracy=probe_acc[-1], full_rows=n_train,
            subset_energy_uj=subset_run.measurement.energy_uj, min_gain_pts=c.min_gain_pts)
        subset_run.decision = decision.text
        self.progress(f"  decision: {decision.text}")
        if not decision.run_full:
            subset_run.produces = Technique.BASELINE
            return probe_models[-1]

        model, measurement = training.measured(
            lambda: training.mlp_train(X=ds.scaled(data.X_train), y=data.y_train, hidden=c.hidden,
                                       max_iter=c.max_iter, seed=c.seed),
            intensity=self.intensity)
        accuracy = _sklearn_accuracy(model, data.X_eval, data.y_eval)
        self.runs.append(_Run(
            stage=TrainingRun.Stage.FULL, train_rows=n_train, produces=Technique.BASELINE,
            description=f"full run: {_shape(c.hidden)} on all {n_train} training rows, {c.max_iter} epochs",
            accuracy=accuracy, measurement=measurement,
            decision=(f"kept as the baseline: held-out accuracy {accuracy:.4f} (the curve predicted "
                      f"{decision.predicted_accuracy:.4f}); {_joules(measurement.energy_uj)} against an estimated "
                      f"{_joules(decision.estimated_energy_uj)}")))
        self.progress(f"  full run: {n_train} rows -> held-out {accuracy:.4f} "
                      f"({_joules(measurement.energy_uj)}, {measurement.duration_us / 1e6:.1f} s)")
        return model

    # -- variants -----------------------------------------------------------------------------

    def add_variant(self, *, technique: str, content: bytes, run: _Run) -> _Candidate:
        path = self.workdir / f"{VARIANT_PREFIX[technique]}.onnx"
        path.write_bytes(content)
        accuracy = accuracy_measure(path=path, rows=self.data.X_eval, labels=self.data.y_eval)
        profile = profile_model(path=path, rows=self.data.X_eval, batch_size=self.config.profile_batch_size,
                                repetitions=self.config.profile_repetitions, warmup=self.config.profile_warmup)
        candidate = _Candidate(technique=technique, content=content, accuracy=accuracy, profile=profile,
                               parameters=export.weight_count(content=content), run=run)
        run.produces = technique
        self.candidates[technique] = candidate
        self.progress(f"  {VARIANT_PREFIX[technique]}: accuracy {accuracy:.4f}, "
                      f"{_joules(profile.energy_per_1k_uj)} per 1,000 predictions, "
                      f"p50 {profile.latency_p50_us} us per {profile.batch_size}-row batch, "
                      f"{candidate.parameters:,} weights")
        return candidate

    def compress(self, *, description: str, train_rows: int, work: Callable[[], bytes], technique: str) -> None:
        content, measurement = training.measured(work, intensity=self.intensity)
        run = _Run(stage=TrainingRun.Stage.COMPRESSION, description=description, train_rows=train_rows,
                   accuracy=Decimal(0), measurement=measurement)
        self.runs.append(run)
        self.progress(f"  {VARIANT_PREFIX[technique]} made: {_joules(measurement.energy_uj)}, "
                      f"{measurement.duration_us / 1e6:.1f} s")
        candidate = self.add_variant(technique=technique, content=content, run=run)
        run.accuracy = candidate.accuracy

    def build_variants(self, baseline: MLPClassifier) -> None:
        c, data = self.config, self.data
        baseline_run = next(r for r in self.runs if r.produces == Technique.BASELINE)
        baseline_bytes = export.mlp_onnx(model=baseline, graph_name=f"{FAMILY_NAME}-baseline")
        baseline_run.accuracy = self.add_variant(technique=Technique.BASELINE, content=baseline_bytes,
                                                 run=baseline_run).accuracy

        self.compress(technique=Technique.INT8_QUANTISED, train_rows=0,
                      description="int8 dynamic quantisation of the baseline (weights int8, activations per call)",
                      work=lambda: export.int8_quantise(content=baseline_bytes))

        X_train = ds.scaled(data.X_train)
        kept = [round(n * c.prune_keep_fraction) for n in c.hidden]
        self.compress(
            technique=Technique.PRUNED, train_rows=len(X_train),
            description=(f"structured magnitude pruning: kept the {c.prune_keep_fraction:.0%} of hidden units with "
                         f"the largest incoming L1 norm ({_shape(c.hidden)} -> {_shape(tuple(kept))}), "
                         f"fine-tuned {c.finetune_max_iter} epochs"),
            work=lambda: export.mlp_onnx(model=_pruned(baseline, c, X_train, data.y_train),
                                         graph_name=f"{FAMILY_NAME}-pruned"))

        X_transfer = np.concatenate([X_train, ds.shifted_copies(X_train)])
        self.compress(
            technique=Technique.DISTILLED, train_rows=len(X_transfer),
            description=(f"distilled student {_shape(c.student_hidden)}: regressed the baseline's logits on "
                         f"{len(X_transfer)} rows (training split + 1-pixel shifts), {c.student_max_iter} epochs"),
            work=lambda: export.mlp_onnx(
                model=training.student_distil(teacher=baseline, X_transfer=X_transfer, X_train=X_train,
                                              y_train=data.y_train, hidden=c.student_hidden,
                                              max_iter=c.student_max_iter, seed=c.seed),
                graph_name=f"{FAMILY_NAME}-distilled"))

    def judge_compression(self, floor: Decimal) -> None:
        """Decision text of each compression run: its trade against the baseline."""
        base = self.candidates[Technique.BASELINE]
        for technique, candidate in self.candidates.items():
            if technique == Technique.BASELINE:
                continue
            ratio = candidate.profile.energy_per_1k_uj / max(1, base.profile.energy_per_1k_uj)
            delta_pts = (candidate.accuracy - base.accuracy) * 100
            eligible = candidate.accuracy >= floor
            candidate.run.decision = (
                f"registered: {ratio:.0%} of the baseline's inference energy, {delta_pts:+.2f} pts accuracy; "
                + (f"meets the family floor {floor}, so efficiency mode may route to it" if eligible
                   else f"below the family floor {floor}, so efficiency mode will not route to it"))


def _pruned(baseline: MLPClassifier, c: BuildConfig, X_train: np.ndarray, y_train: np.ndarray) -> MLPClassifier:
    coefs, intercepts = training.units_prune(model=baseline, keep_fraction=c.prune_keep_fraction)
    return training.mlp_finetune(coefs=coefs, intercepts=intercepts, X=X_train, y=y_train,
                                 max_iter=c.finetune_max_iter, seed=c.seed)


def _shape(hidden: tuple[int, ...]) -> str:
    return "-".join(str(n) for n in (ds.N_FEATURES, *hidden, len(ds.CLASSES)))


def _joules(energy_uj: int) -> str:
    return f"{energy_uj / 1e6:.3f} J" if energy_uj < 10_000_000 else f"{energy_uj / 1e6:.1f} J"


def _register(*, family_name: str, builder: _Builder, data: ds.Dataset, config: BuildConfig) -> BuildResult:
    c = config
    baseline = builder.candidates[Technique.BASELINE]
    floor = floor_for(baseline_accuracy=baseline.accuracy, margin_pts=c.floor_margin_pts)
    builder.judge_compression(floor)
    input_schema = {**runtime.input_signature(builder.workdir / "baseline.onnx"), "min": 0, "max": ds.PIXEL_MAX}
    output_schema = {"name": "label", "dtype": "int64", "classes": ds.CLASSES, "probabilities": "probabilities"}
    try:
        with transaction.atomic():
            family, _ = ModelFamily.objects.select_for_update().get_or_create(
                name=family_name, defaults={"accuracy_floor": floor, "description": FAMILY_DESCRIPTION})
            latest = family.versions.order_by("-version").first()
            number = latest.version + 1 if latest else 1
            version = ModelVersion.objects.create(
                family=family, version=number, dataset_name=data.name, dataset_version=data.version,
                dataset_sha256=data.sha256, train_rows=len(data.X_train), eval_rows=len(data.X_eval),
                config_sha256=c.fingerprint(),
                notes=f"{'quick' if c == QUICK else 'full'} build; config: {c.as_json()}")
            variants: dict[str, ModelVariant] = {}
            for technique in VARIANT_PREFIX:  # baseline first: the others' parent
                cand = builder.candidates[technique]
                run = cand.run
                variants[technique] = ModelVariant.objects.create(
                    version=version, name=f"{VARIANT_PREFIX[technique]}-v{number}", technique=technique,
                    parent=variants.get(Technique.BASELINE), artifact=artifact_store(content=cand.content),
                    input_schema=input_schema, output_schema=output_schema, parameters=cand.parameters,
                    accuracy=cand.accuracy, accuracy_metric="top-1 accuracy",
                    energy_per_1k_uj=cand.profile.energy_per_1k_uj, energy_method=cand.profile.energy_method,
                    profile_batch_size=cand.profile.batch_size, profile_threads=cand.profile.threads,
                    latency_p50_us=cand.profile.latency_p50_us, latency_p95_us=cand.profile.latency_p95_us,
                    rows_per_second=cand.profile.rows_per_second,
                    training_energy_uj=run.measurement.energy_uj, training_co2e_ug=run.measurement.co2e_ug,
                    training_method=run.measurement.method)
            TrainingRun.objects.bulk_create([
                TrainingRun(version=version, variant=variants.get(run.produces) if run.produces else None,
                            stage=run.stage, description=run.description[:200], train_rows=run.train_rows,
                            accuracy=run.accuracy, energy_uj=run.measurement.energy_uj,
                            co2e_ug=run.measurement.co2e_ug, duration_us=run.measurement.duration_us,
                            method=run.measurement.method, decision=run.decision)
                for run in builder.runs])
            family.accuracy_floor = floor
            family.default_variant = variants[Technique.BASELINE]
            family.description = FAMILY_DESCRIPTION
            family.save(update_fields=["accuracy_floor", "default_variant", "description"])
    except IntegrityError as exc:
        raise BuildError(f"registering failed (another build registered a version at the same time? run "
                         f"build_models again): {exc}".replace("\n", " ")) from exc
    return BuildResult(family=family, version=version, variants=list(variants.values()))


def family_build(*, name: str = FAMILY_NAME, force: bool = False, quick: bool = False,
                 progress: Callable[[str], None] | None = None, zone: str | None = None) -> BuildResult:
    """Build and register a new version of a model family, or report it up to date.

    Unless `force`, returns the newest version (up_to_date=True) when it was built from
    the same dataset with the same config and its artifact files exist. `quick` trains
    far fewer epochs (tests, smoke runs). `zone` is the grid zone of the training
    machine for CO2e (default settings.TRAINING_GRID_ZONE, else GB).
    Raises BuildError (one line: the stage and the reason) when any stage fails;
    nothing is registered unless every stage succeeded.
    """
    say = progress or (lambda line: None)
    if name != FAMILY_NAME:
        raise BuildError(f"unknown model family {name!r}; build_models builds: {FAMILY_NAME}")
    config = QUICK if quick else FULL
    stage = "dataset"
    try:
        data = ds.digits_load(seed=config.seed, eval_fraction=config.eval_fraction)
        say(f"[1/5] dataset {data.name} (scikit-learn {data.version}): {len(data.X_train)} training / "
            f"{len(data.X_eval)} held-out rows, sha256 {data.sha256[:12]}")
        if not force:
            current = version_up_to_date(family_name=name, data=data, config=config)
            if current is not None:
                say(f"{name} v{current.version} is up to date (same dataset and build config); --force rebuilds")
                return BuildResult(family=current.family, version=current, variants=list(current.variants.all()),
                                   up_to_date=True)
        stage = "grid intensity"
        training_zone = zone or getattr(settings, "TRAINING_GRID_ZONE", DEFAULT_TRAINING_ZONE)
        intensity = training.grid_intensity_for_training(zone=training_zone)
        with (tempfile.TemporaryDirectory(prefix="greentier-build-") as tmp,
              threadpool_limits(limits=config.training_threads, user_api="blas")):
            builder = _Builder(config=config, data=data, intensity=intensity, workdir=Path(tmp), progress=say)
            stage = "staged training"
            say(f"[2/5] staged training of {_shape(config.hidden)} ({'quick' if quick else 'full'} config; "
                f"metered as process CPU time x the power model, CO2e at {intensity.source})")
            baseline = builder.train_baseline()
            stage = "variants"
            say("[3/5] export, compress, evaluate and profile (held-out rows, batch "
                f"{config.profile_batch_size}, 1 thread)")
            builder.build_variants(baseline)
            stage = "registration"
            say("[4/5] registering")
            result = _register(family_name=name, builder=builder, data=data, config=config)
    except BuildError:
        raise
    except Exception as exc:  # one line for the command; the cause stays chained for --traceback
        raise BuildError(f"{stage} failed: {type(exc).__name__}: {exc}".replace("\n", " ")) from exc
    base = next(v for v in result.variants if v.technique == Technique.BASELINE)
    say(f"[5/5] registered {name} v{result.version.version}: {len(result.variants)} variants, accuracy floor "
        f"{result.family.accuracy_floor}, default {base.name}")
    for v in result.variants:
        say(f"  {v.name:<14} {v.technique:<15} accuracy {v.accuracy:.4f}  {v.energy_per_1k_uj / 1e6:8.4f} J/1k  "
            f"({v.energy_per_1k_uj / base.energy_per_1k_uj:6.1%} of baseline)  p50 {v.latency_p50_us} us")
    return result
