"""Training, the staged-training rule, compression and the training meter.

Pure numpy / scikit-learn: nothing here touches the database or onnxruntime.
Networks are trained on inputs scaled to 0..1 (dataset.scaled); export folds the scale
into the first layer.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from carbon import units
from inference.energy import power_model

T = TypeVar("T")

# --- the training meter -------------------------------------------------------------------


@dataclass(frozen=True)
class GridIntensity:
    g_per_kwh: Decimal
    source: str  # e.g. "codecarbon-annual-average:GBR:2023"


@dataclass(frozen=True)
class Measurement:
    """One measured training run, in stored units."""

    cpu_us: int  # CPU time of the whole process (all BLAS threads)
    duration_us: int  # wall time
    energy_uj: int
    co2e_ug: int
    method: str  # how energy and CO2e were obtained, stored with the run


def grid_intensity_for_training(*, zone: str) -> GridIntensity:
    """Annual-average intensity of the zone the models are trained in (CodeCarbon's data,
    through carbon.selectors). Raises carbon's InvalidZoneError for a malformed zone."""
    from carbon.selectors import annual_average

    average = annual_average(zone=zone)
    return GridIntensity(g_per_kwh=average.g_per_kwh, source=average.source)


def measured(work: Callable[[], T], *, intensity: GridIntensity) -> tuple[T, Measurement]:
    """Run `work` and measure it with the project's own meter: process CPU time (all
    threads, so BLAS's worker threads count) x the power model of inference.energy,
    the same watts per core and PUE as request metering; CO2e = energy x `intensity`.

    Not CodeCarbon's tracker: it takes ~2 s to start per run on this machine and, with
    no RAPL here, estimates from a fixed CPU power, while this meter is what the rest of
    the platform bills with (docs/models.md).
    """
    model_power = power_model()
    cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
    result = work()
    cpu_us = (time.process_time_ns() - cpu0) // 1000
    duration_us = (time.perf_counter_ns() - wall0) // 1000
    energy_uj = model_power.energy_uj(cpu_us)
    method = f"process CPU time x {model_power.method}; grid {intensity.source} {intensity.g_per_kwh} g/kWh"
    return result, Measurement(
        cpu_us=cpu_us, duration_us=duration_us, energy_uj=energy_uj,
        co2e_ug=units.co2e_ug(energy_uj=energy_uj, g_per_kwh=intensity.g_per_kwh), method=method[:200],
    )


# --- the staged-training rule ---------------------------------------------------------------


@dataclass(frozen=True)
class LearningCurve:
    """Error rate as a power law of training rows: error = coefficient x rows^-exponent."""

    coefficient: float
    exponent: float  # > 0: more rows, fewer errors; 0: no gain predicted

    def accuracy_at(self, rows: int) -> float:
        return min(1.0, max(0.0, 1.0 - self.coefficient * rows ** -self.exponent))


def learning_curve_fit(*, rows: Sequence[int], accuracies: Sequence[float], eval_rows: int) -> LearningCurve:
    """Least-squares fit of log(error) on log(rows) over the probes.

    A perfect probe counts as half an error of the `eval_rows` it was scored on (so
    the log exists). A curve whose error does not fall with rows predicts no gain:
    exponent 0, the largest probe's error everywhere.
    Raises ValueError for fewer than two distinct probe sizes.
    """
    if len(rows) != len(accuracies) or len(set(rows)) < 2:
        raise ValueError("a learning curve needs accuracies at two or more distinct row counts")
    floor = 0.5 / eval_rows
    x = np.log(np.asarray(rows, dtype=np.float64))
    errors = np.maximum(1.0 - np.asarray(accuracies, dtype=np.float64), floor)
    slope, intercept = np.polyfit(x, np.log(errors), 1)
    if slope >= 0:
        largest = int(np.argmax(rows))
        return LearningCurve(coefficient=float(errors[largest]), exponent=0.0)
    return LearningCurve(coefficient=float(math.exp(intercept)), exponent=float(-slope))


@dataclass(frozen=True)
class FullRunDecision:
    run_full: bool
    predicted_accuracy: float  # at full_rows, from the curve
    gain_pts: float  # predicted accuracy minus the subset model's, in percentage points
    estimated_energy_uj: int  # of the full run, scaled from the subset run by rows
    text: str  # stored on the subset TrainingRun


def full_run_decide(*, curve: LearningCurve, subset_rows: int, subset_accuracy: float, full_rows: int,
                    subset_energy_uj: int, min_gain_pts: float) -> FullRunDecision:
    """Train on all rows only when the curve predicts at least `min_gain_pts` points of
    accuracy over the subset model. The estimated energy (epochs are fixed, so cost
    grows with rows) is stated alongside so a reader can judge the price of the gain."""
    predicted = curve.accuracy_at(full_rows)
    gain_pts = (predicted - subset_accuracy) * 100
    estimated_uj = round(subset_energy_uj * full_rows / subset_rows)
    run_full = gain_pts >= min_gain_pts
    text = (
        f"learning curve: error = {curve.coefficient:.4g} x rows^-{curve.exponent:.3f} (validation accuracy of "
        f"the subset probes); predicted {predicted:.4f} at {full_rows} rows vs {subset_accuracy:.4f} at "
        f"{subset_rows} rows ({gain_pts:+.2f} pts) for about {units.uj_to_j(estimated_uj):.1f} J "
        f"({full_rows / subset_rows:.1f}x this run). Rule: full run when the predicted gain is >= "
        f"{min_gain_pts} pts -> {'full run' if run_full else 'no full run; this subset model is the baseline'}."
    )
    return FullRunDecision(run_full=run_full, predicted_accuracy=predicted, gain_pts=gain_pts,
                           estimated_energy_uj=estimated_uj, text=text)


# --- networks ---------------------------------------------------------------------------------


def _quiet(fit: Callable[[], T]) -> T:
    # Fixed epoch budgets are the point (energy); "did not converge" is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit()


def mlp_train(*, X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], max_iter: int, seed: int) -> MLPClassifier:
    """An MLP classifier (ReLU, Adam, softmax) trained for at most `max_iter` epochs."""
    model = MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=seed)
    return _quiet(lambda: model.fit(X, y))


def mlp_logits(*, coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray], X: np.ndarray) -> np.ndarray:
    """Pre-softmax outputs of a ReLU MLP given its weights."""
    a = X
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        a = a @ W + b
        if i < len(coefs) - 1:
            a = np.maximum(a, 0)
    return a


def _shell(*, hidden: tuple[int, ...], X: np.ndarray, y: np.ndarray, seed: int) -> MLPClassifier:
    """A fitted MLPClassifier of the given shape (classes, output activation and the
    rest of scikit-learn's state set by one epoch), whose weights the caller replaces."""
    return mlp_train(X=X, y=y, hidden=hidden, max_iter=1, seed=seed)


def _replace_weights(model: MLPClassifier, coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray]) -> None:
    dtype = model.coefs_[0].dtype
    shapes = [w.shape for w in model.coefs_], [b.shape for b in model.intercepts_]
    if shapes != ([w.shape for w in coefs], [b.shape for b in intercepts]):
        raise ValueError(f"weights of shape {[w.shape for w in coefs]} do not fit a network of {shapes[0]}")
    model.coefs_ = [np.ascontiguousarray(w, dtype=dtype) for w in coefs]
    model.intercepts_ = [np.ascontiguousarray(b, dtype=dtype) for b in intercepts]


def units_prune(*, model: MLPClassifier, keep_fraction: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Structured magnitude pruning: in each hidden layer keep the `keep_fraction` of
    units with the largest L1 norm of incoming weights and delete the rest, with their
    outgoing weights. Returns the smaller network's (coefs, intercepts).

    Whole units, not single weights: a dense ONNX MatMul costs the same with zeros in
    it, while a narrower layer is a smaller MatMul (docs/models.md).
    """
    coefs, intercepts = [], []
    kept_inputs = np.arange(model.coefs_[0].shape[0])
    for W, b in zip(model.coefs_[:-1], model.intercepts_[:-1], strict=True):
        W = W[kept_inputs]
        keep = max(1, round(W.shape[1] * keep_fraction))
        # Stable sort on the negated norm: ties keep the lower index, so the result is reproducible.
        kept = np.sort(np.argsort(-np.abs(W).sum(axis=0), kind="stable")[:keep])
        coefs.append(W[:, kept])
        intercepts.append(b[kept])
        kept_inputs = kept
    coefs.append(model.coefs_[-1][kept_inputs])
    intercepts.append(model.intercepts_[-1].copy())
    return coefs, intercepts


def mlp_finetune(*, coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray], X: np.ndarray, y: np.ndarray,
                 max_iter: int, seed: int) -> MLPClassifier:
    """Continue training a network from given weights (Adam restarts, weights kept).
    Pruned units no longer exist, so fine-tuning cannot bring them back: the mask is the
    architecture."""
    hidden = tuple(w.shape[1] for w in coefs[:-1])
    model = _shell(hidden=hidden, X=X, y=y, seed=seed)
    _replace_weights(model, coefs, intercepts)
    model.set_params(warm_start=True, max_iter=max_iter)
    return _quiet(lambda: model.fit(X, y))


def student_distil(*, teacher: MLPClassifier, X_transfer: np.ndarray, X_train: np.ndarray, y_train: np.ndarray,
                   hidden: tuple[int, ...], max_iter: int, seed: int) -> MLPClassifier:
    """A small student matching the teacher's logits (Ba & Caruana's logit regression,
    the high-temperature limit of Hinton's soft targets) on a transfer set.

    The transfer set is unlabelled: the teacher's logits, centred per row (softmax does
    not see a shift), are the only targets, so the student learns the teacher's
    similarities between classes, not just its top answer. The regressor's weights go
    into an MLPClassifier of the same shape: softmax of the logits gives probabilities
    and argmax the label, exactly as the exported ONNX graph computes them.
    """
    targets = mlp_logits(coefs=teacher.coefs_, intercepts=teacher.intercepts_, X=X_transfer)
    targets = (targets - targets.mean(axis=1, keepdims=True)).astype(np.float32)
    regressor = MLPRegressor(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=seed)
    _quiet(lambda: regressor.fit(X_transfer, targets))
    student = _shell(hidden=hidden, X=X_train, y=y_train, seed=seed)
    _replace_weights(student, regressor.coefs_, regressor.intercepts_)
    return student
