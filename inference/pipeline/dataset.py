"""The digits dataset that ships with scikit-learn (no download), split reproducibly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DATASET_NAME = "sklearn-digits"
# Pixels are grey levels 0..16; the exported models take them as they are.
PIXEL_MAX = 16
N_FEATURES = 64
CLASSES = list(range(10))


@dataclass(frozen=True)
class Dataset:
    name: str
    version: str  # the scikit-learn version that shipped the data
    sha256: str  # of the full data arrays, before splitting
    X_train: np.ndarray  # float32 (n, 64), raw grey levels 0..16
    y_train: np.ndarray  # int64 (n,)
    X_eval: np.ndarray  # the stratified held-out evaluation split, never trained on
    y_eval: np.ndarray


def _arrays_sha256(X: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in (X, y):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def digits_load(*, seed: int, eval_fraction: float) -> Dataset:
    """The 1,797 8x8 digits with a stratified held-out split (`eval_fraction` of rows)."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    X_train, X_eval, y_train, y_eval = train_test_split(
        X, y, test_size=eval_fraction, stratify=y, random_state=seed)
    return Dataset(name=DATASET_NAME, version=sklearn.__version__, sha256=_arrays_sha256(X, y),
                   X_train=X_train, y_train=y_train, X_eval=X_eval, y_eval=y_eval)


def scaled(X: np.ndarray) -> np.ndarray:
    """Inputs as the networks are trained on them: 0..1. The scale is folded into the
    first layer's weights on export, so served models take raw 0..16 grey levels."""
    return (X / PIXEL_MAX).astype(np.float32)


def shifted_copies(X: np.ndarray) -> np.ndarray:
    """Each image moved one pixel left, right, up and down (vacated edge = 0), for the
    distillation transfer set: unlabelled look-alike digits the teacher labels."""
    images = X.reshape(-1, 8, 8)
    out = []
    for axis, step in ((2, 1), (2, -1), (1, 1), (1, -1)):
        moved = np.roll(images, step, axis=axis)
        edge = 0 if step == 1 else -1
        if axis == 2:
            moved[:, :, edge] = 0
        else:
            moved[:, edge, :] = 0
        out.append(moved.reshape(-1, N_FEATURES))
    return np.concatenate(out)
