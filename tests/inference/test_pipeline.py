"""build_models: staged training, four variants, ONNX artifacts, profiles, idempotence.

One quick build per module (about 10 s), inside a transaction rolled back at the end,
so the registry it creates is seen by these tests only.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from io import StringIO
from types import SimpleNamespace

import numpy as np
import pytest
import sklearn
from django.core.management import CommandError, call_command
from django.db import transaction

from inference import runtime
from inference.energy import power_model
from inference.models import ModelArtifact, ModelFamily, ModelVariant, ModelVersion, Technique, TrainingRun
from inference.pipeline import PROFILE_BATCH_SIZE, accuracy_fraction, profile_model
from inference.pipeline.build import QUICK, floor_for
from inference.pipeline.dataset import digits_load
from inference.pipeline.training import LearningCurve, full_run_decide, learning_curve_fit, units_prune
from inference.registry import artifact_path, artifact_store


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (ModelFamily, ModelVersion, ModelVariant, ModelArtifact, TrainingRun)}


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("build_models", "--quick", stdout=out)
        version = ModelVersion.objects.get(family__name="digits-classifier")
        variants = {v.technique: v for v in version.variants.select_related("artifact", "parent")}
        yield SimpleNamespace(output=out.getvalue(), version=version, variants=variants,
                              data=digits_load(seed=QUICK.seed, eval_fraction=QUICK.eval_fraction))
        transaction.set_rollback(True)


def test_build_registers_one_version_with_four_variants(built, db):
    version, variants = built.version, built.variants
    assert version.version == 1
    assert (version.dataset_name, version.dataset_version) == ("sklearn-digits", sklearn.__version__)
    assert version.dataset_sha256 == built.data.sha256
    assert (version.train_rows, version.eval_rows) == (1347, 450)
    assert set(variants) == {"baseline", "int8-quantised", "pruned", "distilled"}
    assert {v.name for v in variants.values()} == {"baseline-v1", "int8-v1", "pruned-v1", "distilled-v1"}

    baseline = variants[Technique.BASELINE]
    assert baseline.parent is None
    for technique in (Technique.INT8_QUANTISED, Technique.PRUNED, Technique.DISTILLED):
        assert variants[technique].parent_id == baseline.id

    family = ModelFamily.objects.get(name="digits-classifier")
    assert family.default_variant_id == baseline.id
    assert family.accuracy_floor == floor_for(baseline_accuracy=baseline.accuracy, margin_pts=1)
    assert "[5/5] registered digits-classifier v1: 4 variants" in built.output


def test_weights_counted_from_the_onnx_graph(built, db):
    # Dense layers: in x out weights + out biases. Pruning keeps 256 of 1,024 units per layer.
    assert built.variants["baseline"].parameters == 64 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert built.variants["pruned"].parameters == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert built.variants["distilled"].parameters == 64 * 64 + 64 + 64 * 10 + 10


def test_staged_training_runs_are_recorded_with_decisions(built, db):
    runs = list(TrainingRun.objects.filter(version=built.version).order_by("id"))
    assert [r.stage for r in runs] == ["subset", "subset", "subset", "full", "compression", "compression",
                                       "compression"]
    assert [r.train_rows for r in runs[:4]] == [108, 216, 323, 1347]
    assert all(r.decision for r in runs)
    assert runs[2].decision.startswith("learning curve: error = ")
    assert runs[2].decision.endswith("-> full run.")
    assert runs[3].decision.startswith("kept as the baseline")
    variants = built.variants
    assert [r.variant_id for r in runs] == [None, None, None, variants["baseline"].id,
                                            variants["int8-quantised"].id, variants["pruned"].id,
                                            variants["distilled"].id]
    model_power = power_model()
    for run in runs:
        assert run.method.startswith(f"process CPU time x {model_power.method}; grid codecarbon-annual-average:")
        assert run.energy_uj > 0 and run.duration_us > 0
    full = runs[3]
    assert (variants["baseline"].training_energy_uj, variants["baseline"].training_co2e_ug) == (full.energy_uj,
                                                                                                full.co2e_ug)
    assert variants["baseline"].training_method == full.method


def test_every_artifact_loads_and_scores_its_registered_accuracy(built, db):
    X_eval, y_eval = built.data.X_eval, built.data.y_eval
    for variant in built.variants.values():
        path = artifact_path(variant.artifact)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == variant.artifact.sha256
        model = runtime.load(path)
        labels, probabilities = model.predict_proba(X_eval)
        assert probabilities.shape == (450, 10)
        assert accuracy_fraction(correct=int(np.sum(labels == y_eval)), total=450) == variant.accuracy
        assert variant.input_schema == {"name": "input", "dtype": "float32", "shape": [None, 64], "min": 0, "max": 16}
        # The compression runs record the variant's accuracy.
        assert variant.training_runs.get().accuracy == variant.accuracy


def test_profiles_use_the_metering_power_model(built, db):
    method = power_model().method
    for variant in built.variants.values():
        assert variant.energy_per_1k_uj > 0
        assert variant.energy_method == method
        assert (variant.profile_batch_size, variant.profile_threads) == (PROFILE_BATCH_SIZE, 1)
        assert 0 < variant.latency_p50_us <= variant.latency_p95_us
        assert variant.rows_per_second > 0


def test_second_run_is_up_to_date_and_stores_nothing(built, db):
    before = _counts()
    out = StringIO()
    call_command("build_models", "--quick", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        "digits-classifier v1 is up to date (same dataset and build config); --force rebuilds")
    assert _counts() == before


def test_identical_bytes_are_stored_once(built, db):
    artifact = built.variants["pruned"].artifact
    before = _counts()
    again = artifact_store(content=artifact_path(artifact).read_bytes())
    assert again.id == artifact.id
    assert _counts() == before


def test_forced_rebuild_is_a_new_version_with_the_same_artifacts(built, db):
    """Training is seeded and export pinned, so a rebuild gives byte-identical models."""
    before = _counts()
    call_command("build_models", "--quick", "--force", stdout=StringIO())
    after = _counts()
    assert after == {**before, "ModelVersion": before["ModelVersion"] + 1, "ModelVariant": before["ModelVariant"] + 4,
                     "TrainingRun": before["TrainingRun"] + 7}
    second = ModelVersion.objects.get(family__name="digits-classifier", version=2)
    assert {v.technique: v.artifact_id for v in second.variants.all()} == {
        t: v.artifact_id for t, v in built.variants.items()}
    assert ModelFamily.objects.get(name="digits-classifier").default_variant.name == "baseline-v2"


def test_unknown_family_is_a_one_line_error(db):
    before = _counts()
    with pytest.raises(CommandError) as exc:
        call_command("build_models", "--family", "cats", stdout=StringIO())
    assert str(exc.value) == "build_models: unknown model family 'cats'; build_models builds: digits-classifier"
    assert _counts() == before


# --- pure parts ----------------------------------------------------------------------------------


def test_learning_curve_recovers_a_power_law():
    # error = 2 x rows^-0.5: 0.2 at 100 rows, 0.1 at 400, 0.05 at 1,600
    curve = learning_curve_fit(rows=[100, 400], accuracies=[0.8, 0.9], eval_rows=200)
    assert round(curve.coefficient, 9) == 2.0
    assert round(curve.exponent, 9) == 0.5
    assert round(curve.accuracy_at(1600), 9) == 0.95


def test_learning_curve_that_does_not_improve_predicts_no_gain():
    curve = learning_curve_fit(rows=[100, 200, 300], accuracies=[0.9, 0.9, 0.89], eval_rows=200)
    assert curve.exponent == 0.0
    assert round(curve.accuracy_at(10_000), 9) == 0.89


def test_full_run_rule():
    curve = LearningCurve(coefficient=2.0, exponent=0.5)  # 0.9 at 400 rows, 0.95 at 1,600
    go = full_run_decide(curve=curve, subset_rows=400, subset_accuracy=0.9, full_rows=1600,
                         subset_energy_uj=1_000_000, min_gain_pts=0.5)
    assert (go.run_full, round(go.gain_pts, 6), go.estimated_energy_uj) == (True, 5.0, 4_000_000)
    stop = full_run_decide(curve=curve, subset_rows=400, subset_accuracy=0.9, full_rows=1600,
                           subset_energy_uj=1_000_000, min_gain_pts=6.0)
    assert stop.run_full is False
    assert stop.text.endswith("-> no full run; this subset model is the baseline.")


def test_floor_is_baseline_minus_one_point_rounded_down():
    assert floor_for(baseline_accuracy=Decimal("0.980000"), margin_pts=1) == Decimal("0.970")
    assert floor_for(baseline_accuracy=Decimal("0.957778"), margin_pts=1) == Decimal("0.947")


def test_structured_pruning_keeps_the_units_with_the_largest_incoming_l1_norm():
    model = SimpleNamespace(
        coefs_=[np.array([[1.0, -5.0, 0.1, 3.0], [1.0, 0.0, 0.1, -3.0]]),  # L1 per unit: 2, 5, 0.2, 6
                np.arange(8.0).reshape(4, 2)],
        intercepts_=[np.array([0.1, 0.2, 0.3, 0.4]), np.array([1.0, 2.0])])
    coefs, intercepts = units_prune(model=model, keep_fraction=0.5)
    assert coefs[0].tolist() == [[-5.0, 3.0], [0.0, -3.0]]  # units 1 and 3, in order
    assert intercepts[0].tolist() == [0.2, 0.4]
    assert coefs[1].tolist() == [[2.0, 3.0], [6.0, 7.0]]  # their outgoing rows
    assert intercepts[1].tolist() == [1.0, 2.0]


def test_profile_model_energy_is_the_power_model_of_its_cpu_time(built, db):
    path = artifact_path(built.variants["distilled"].artifact)
    profile = profile_model(path=path, rows=built.data.X_eval[:10], batch_size=4, repetitions=20, warmup=2)
    assert (profile.batch_size, profile.threads, profile.repetitions, profile.warmup) == (4, 1, 20, 2)
    assert profile.energy_per_1k_uj == power_model().energy_uj(profile.cpu_us_per_1k)
    assert profile.energy_method == power_model().method
    with pytest.raises(runtime.RuntimeError_):
        profile_model(path=path, rows=np.zeros((4, 3), dtype=np.float32))
