"""A small real model family for serving tests: ONNX files built from sklearn's digits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from decimal import Decimal

import numpy as np
import pytest
import requests
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from inference import routing
from inference.models import ModelFamily, ModelVariant, ModelVersion
from inference.registry import artifact_store
from tests.conftest import ROOT, service_env


def _onnx_bytes(model) -> bytes:
    from skl2onnx import to_onnx

    return to_onnx(model, np.zeros((1, 64), dtype=np.float32), options={id(model): {"zipmap": False}},
                   target_opset=17).SerializeToString()


@pytest.fixture(scope="session")
def digits_models():
    """(X_eval float32, y_eval, {name: onnx bytes}) trained once per test session."""
    digits = load_digits()
    X = digits.data.astype(np.float32)
    y = digits.target
    X_train, y_train, X_eval, y_eval = X[:1400], y[:1400], X[1400:], y[1400:]
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X_train, y_train)
    small = LogisticRegression(max_iter=500).fit(X_train, y_train)
    return X_eval, y_eval, {"baseline": _onnx_bytes(mlp), "distilled": _onnx_bytes(small)}


@pytest.fixture
def digits_family(db, digits_models):
    """Family with two real variants: an accurate, costly baseline and a cheap student."""
    _, _, blobs = digits_models
    family = ModelFamily.objects.create(name="digits-classifier", accuracy_floor=Decimal("0.900000"))
    version = ModelVersion.objects.create(family=family, version=1, dataset_name="sklearn-digits",
                                          dataset_version="1", dataset_sha256="a" * 64, train_rows=1400,
                                          eval_rows=397)
    common = dict(version=version, input_schema={"name": "X", "dtype": "float32", "shape": [None, 64],
                                                 "min": 0, "max": 16},
                  output_schema={"name": "label", "dtype": "int64"}, energy_method="cpu-model: test",
                  profile_batch_size=32, latency_p50_us=100, latency_p95_us=120)
    baseline = ModelVariant.objects.create(name="baseline", technique="baseline",
                                           artifact=artifact_store(content=blobs["baseline"]),
                                           accuracy=Decimal("0.970000"), energy_per_1k_uj=9_000_000, **common)
    student = ModelVariant.objects.create(name="student", technique="distilled", parent=baseline,
                                          artifact=artifact_store(content=blobs["distilled"]),
                                          accuracy=Decimal("0.950000"), energy_per_1k_uj=2_000_000, **common)
    family.default_variant = baseline
    family.save()
    routing.routes_cache_clear()
    yield family, baseline, student
    routing.routes_cache_clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_gunicorn(transactional_db, tmp_path):
    """gunicorn with 2 workers x 4 threads on the test database, its own spool directory."""
    port = _free_port()
    spool = tmp_path / "spool"
    env = service_env(METERING_SPOOL_DIR=str(spool), METERING_FLUSH_SECONDS="0.5", ALLOWED_HOSTS="127.0.0.1")
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--threads", "4", "--graceful-timeout", "10"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:  # not listening yet, or workers still booting
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError((tmp_path / "gunicorn.log").read_text())
    yield base, proc, spool
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
