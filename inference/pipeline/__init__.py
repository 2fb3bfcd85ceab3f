"""The model building pipeline (manage.py build_models).

Public entry points:
- profile_model(*, path, rows, batch_size=PROFILE_BATCH_SIZE, repetitions=..., warmup=...) -> Profile
  (inference.pipeline.profiling; light, no scikit-learn import);
- accuracy_measure(*, path, rows, labels) -> Decimal;
- inference.pipeline.build.family_build(*, name, force, quick, progress, zone) -> BuildResult
  (imports scikit-learn and skl2onnx, so it is not imported here).
"""

from inference.pipeline.profiling import (
    PROFILE_BATCH_SIZE,
    PROFILE_REPETITIONS,
    PROFILE_THREADS,
    PROFILE_WARMUP,
    Profile,
    accuracy_fraction,
    accuracy_measure,
    profile_model,
)

__all__ = [
    "PROFILE_BATCH_SIZE", "PROFILE_REPETITIONS", "PROFILE_THREADS", "PROFILE_WARMUP", "Profile",
    "accuracy_fraction", "accuracy_measure", "profile_model",
]
