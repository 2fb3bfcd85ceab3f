"""onnxruntime: the only module that imports it.

Sessions are loaded once per process (keyed by the artifact's SHA-256) and reused.
One intra-op and one inter-op thread by default: with several server workers per
machine, more threads only contend (measured: docs/benchmarks.md), and with one
intra-op thread the model runs on the calling thread, so thread CPU time measures it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from django.conf import settings


class RuntimeError_(Exception):
    """A model could not be loaded or run; the message is safe to show."""


@dataclass(frozen=True)
class LoadedModel:
    sha256: str
    session: ort.InferenceSession
    input_name: str
    label_output: str
    proba_output: str | None

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Labels for a float32 array of shape (n, features)."""
        return self.session.run([self.label_output], {self.input_name: rows})[0]

    def predict_proba(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = [self.label_output] + ([self.proba_output] if self.proba_output else [])
        result = self.session.run(outputs, {self.input_name: rows})
        return result[0], (result[1] if self.proba_output else None)


_cache: dict[str, LoadedModel] = {}
_lock = threading.Lock()


def session_options(*, threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or getattr(settings, "ONNX_INTRA_OP_THREADS", 1)
    options.inter_op_num_threads = getattr(settings, "ONNX_INTER_OP_THREADS", 1)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def load(path: str | Path, *, sha256: str = "", threads: int | None = None) -> LoadedModel:
    """A new session for an ONNX file (not cached: profiling and building use this)."""
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(threads=threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise RuntimeError_(f"cannot load ONNX model {Path(path).name}: {exc}") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise RuntimeError_(f"model {Path(path).name} must have exactly one input, has {len(inputs)}")
    outputs = [o.name for o in session.get_outputs()]
    label = next((o for o in outputs if "label" in o.lower()), outputs[0])
    proba = next((o for o in outputs if "prob" in o.lower()), None)
    return LoadedModel(sha256=sha256, session=session, input_name=inputs[0].name, label_output=label,
                       proba_output=proba)


def cached(path: str | Path, *, sha256: str) -> LoadedModel:
    """The process-wide session for an artifact, loaded on first use."""
    model = _cache.get(sha256)
    if model is None:
        with _lock:
            model = _cache.get(sha256)
            if model is None:
                model = _cache[sha256] = load(path, sha256=sha256)
    return model


def input_signature(path: str | Path) -> dict:
    """{"name", "dtype", "shape"} of a model's single input, for schemas and checks."""
    session = load(path)
    meta = session.session.get_inputs()[0]
    dtype = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64"}.get(meta.type, meta.type)
    shape = [d if isinstance(d, int) else None for d in meta.shape]
    return {"name": meta.name, "dtype": dtype, "shape": shape}


def quantize_int8_dynamic(src: str | Path, dst: str | Path) -> None:
    """Int8 dynamic quantisation of weights (onnxruntime.quantization)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs "Please consider to run pre-processing" on the root logger for every call;
    # pre-processing (shape inference) changes nothing for an MLP.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
