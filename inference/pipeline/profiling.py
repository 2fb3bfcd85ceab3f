"""Accuracy and inference-energy profiles of an ONNX model: what the registry stores.

The energy figure uses the same power model as request metering (inference.energy):
thread CPU time of the onnxruntime call x watts per busy core x PUE. With one
intra-op thread onnxruntime runs on the calling thread, so thread CPU time is the
model's CPU time and nothing else's.

Light on purpose (numpy, runtime, energy): serving-side code such as an energy gate
can import profile_model without pulling in scikit-learn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from inference import runtime
from inference.energy import power_model, thread_cpu_us

# Rows per onnxruntime call when profiling: a typical online request batches up to a
# few dozen rows, and 32 is large enough that the per-call overhead (~20 us, measured)
# no longer hides the model's own cost. Every variant of a family is profiled alike.
PROFILE_BATCH_SIZE = 32
# One intra-op thread, as served (inference/runtime.py says why).
PROFILE_THREADS = 1
# 200 timed batches of 32 rows: 0.25 s for a 64-1024-1024-10 MLP on this machine, and
# a median that moves by under 2% between runs.
PROFILE_REPETITIONS = 200
# Untimed calls first: the first runs allocate onnxruntime's buffers and warm caches.
PROFILE_WARMUP = 20


@dataclass(frozen=True)
class Profile:
    """Inference cost of one model at one batch size. Integers in their units."""

    batch_size: int
    threads: int
    repetitions: int
    warmup: int
    cpu_us_per_batch: int  # median thread CPU time of one call
    cpu_us_per_1k: int  # CPU time of 1,000 predictions at this batch size
    energy_per_1k_uj: int  # power model applied to cpu_us_per_1k
    energy_method: str  # power_model().method, stored with the figure
    latency_p50_us: int  # wall time per batch
    latency_p95_us: int
    rows_per_second: int  # batch_size / p50 latency


def _batches(rows: np.ndarray, *, batch_size: int, count: int) -> list[np.ndarray]:
    """`count` contiguous float32 batches cycling through `rows` (made before timing)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n = len(rows)
    batches = []
    for i in range(count):
        start = (i * batch_size) % n
        idx = np.arange(start, start + batch_size) % n
        batches.append(np.ascontiguousarray(rows[idx]))
    return batches


def profile_model(*, path: str | Path, rows: np.ndarray, batch_size: int = PROFILE_BATCH_SIZE,
                  repetitions: int = PROFILE_REPETITIONS, warmup: int = PROFILE_WARMUP) -> Profile:
    """Profile an ONNX file on `rows` (float32, shape (n, features)), one thread.

    Each repetition is one onnxruntime call on `batch_size` rows (cycling through
    `rows`); CPU and wall time are medians/percentiles over the repetitions.
    Raises runtime.RuntimeError_ if the model cannot be loaded or run on these rows,
    ValueError for an empty `rows` or non-positive counts.
    """
    if len(rows) == 0:
        raise ValueError("profile_model needs at least one row")
    if batch_size < 1 or repetitions < 1 or warmup < 0:
        raise ValueError("batch_size and repetitions must be >= 1 and warmup >= 0")
    model = runtime.load(path, threads=PROFILE_THREADS)
    batches = _batches(rows, batch_size=batch_size, count=warmup + repetitions)
    try:
        for batch in batches[:warmup]:
            model.predict(batch)
        cpu_us = np.empty(repetitions, dtype=np.int64)
        wall_ns = np.empty(repetitions, dtype=np.int64)
        for i, batch in enumerate(batches[warmup:]):
            c0, w0 = thread_cpu_us(), time.perf_counter_ns()
            model.predict(batch)
            w1, c1 = time.perf_counter_ns(), thread_cpu_us()
            cpu_us[i], wall_ns[i] = c1 - c0, w1 - w0
    except Exception as exc:  # onnxruntime's own error types; runtime.py owns the import
        raise runtime.RuntimeError_(f"cannot run {Path(path).name} on {batch_size}-row batches: {exc}") from None

    cpu_median_us = float(np.median(cpu_us))
    latency_p50_us = max(1, round(float(np.percentile(wall_ns, 50)) / 1000))
    latency_p95_us = max(latency_p50_us, round(float(np.percentile(wall_ns, 95)) / 1000))
    cpu_us_per_1k = round(cpu_median_us * 1000 / batch_size)
    model_power = power_model()
    return Profile(
        batch_size=batch_size, threads=PROFILE_THREADS, repetitions=repetitions, warmup=warmup,
        cpu_us_per_batch=round(cpu_median_us), cpu_us_per_1k=cpu_us_per_1k,
        energy_per_1k_uj=model_power.energy_uj(cpu_us_per_1k), energy_method=model_power.method,
        latency_p50_us=latency_p50_us, latency_p95_us=latency_p95_us,
        rows_per_second=round(batch_size * 1_000_000 / latency_p50_us),
    )


def accuracy_fraction(*, correct: int, total: int) -> Decimal:
    """correct / total as the registry stores it: 6 decimal places, half-even."""
    if total <= 0:
        raise ValueError("accuracy of an empty evaluation set")
    return (Decimal(correct) / Decimal(total)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def accuracy_measure(*, path: str | Path, rows: np.ndarray, labels: np.ndarray) -> Decimal:
    """Top-1 accuracy of an ONNX classifier on labelled rows, through runtime.load."""
    model = runtime.load(path, threads=PROFILE_THREADS)
    try:
        predicted = model.predict(np.ascontiguousarray(rows, dtype=np.float32))
    except Exception as exc:  # onnxruntime's own error types
        raise runtime.RuntimeError_(f"cannot run {Path(path).name} on the evaluation rows: {exc}") from None
    return accuracy_fraction(correct=int(np.sum(predicted == labels)), total=len(labels))
