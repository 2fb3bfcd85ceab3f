"""energy_check: passes an equal model, fails a heavier and a less accurate one."""

from __future__ import annotations

import json
from io import StringIO
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from django.core.management import call_command
from django.db import transaction
from onnx import helper, numpy_helper

from inference.models import ModelFamily
from inference.registry import artifact_path


@pytest.fixture(scope="module")
def family(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("build_models", "--quick", stdout=StringIO())
        fam = ModelFamily.objects.select_related("default_variant__artifact").get(name="digits-classifier")
        yield SimpleNamespace(family=fam, default_bytes=artifact_path(fam.default_variant.artifact).read_bytes())
        transaction.set_rollback(True)


def heavier(model_bytes: bytes, width: int = 4096) -> bytes:
    """The same model plus a dead-weight branch: X' = X + 0 * (X @ W1 @ W2). Same
    predictions, about 2 x 64 x width more multiply-adds per row."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    x = graph.input[0].name
    rng = np.random.default_rng(0)
    graph.initializer.extend([
        numpy_helper.from_array(rng.standard_normal((64, width)).astype(np.float32), "gate_w1"),
        numpy_helper.from_array(rng.standard_normal((width, 64)).astype(np.float32), "gate_w2"),
        numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "gate_zero"),
    ])
    for node in graph.node:  # the original graph now reads X'
        node.input[:] = ["gate_x2" if name == x else name for name in node.input]
    graph.node.insert(0, helper.make_node("MatMul", [x, "gate_w1"], ["gate_h"]))
    graph.node.insert(1, helper.make_node("MatMul", ["gate_h", "gate_w2"], ["gate_z"]))
    graph.node.insert(2, helper.make_node("Mul", ["gate_z", "gate_zero"], ["gate_dead"]))
    graph.node.insert(3, helper.make_node("Add", [x, "gate_dead"], ["gate_x2"]))
    return model.SerializeToString()


def less_accurate() -> bytes:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=50).fit(X[:40].astype(np.float32), y[:40])  # 40 rows: ~0.8 accurate
    return to_onnx(model, X[:1].astype(np.float32), options={id(model): {"zipmap": False}}).SerializeToString()


def run(tmp_path, content: bytes, *args) -> tuple[int, str]:
    path = tmp_path / "candidate.onnx"
    path.write_bytes(content)
    out = StringIO()
    try:
        call_command("energy_check", str(path), "--family", "digits-classifier", "--rounds", "3", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue()


def test_equal_model_passes(family, db, tmp_path):
    code, text = run(tmp_path, family.default_bytes, "--format", "json")
    result = json.loads(text)
    assert code == 0
    assert result["passed"] is True and result["reasons"] == []
    assert result["candidate"]["accuracy"] == result["default"]["accuracy"]


def test_heavier_model_fails_on_energy(family, db, tmp_path):
    code, text = run(tmp_path, heavier(family.default_bytes), "--format", "markdown", "--max-increase", "5%")
    assert code == 1
    assert text.startswith("### Energy impact: FAIL")
    assert "energy per 1,000 predictions grows" in text
    assert "below the family's floor" not in text  # same predictions, same accuracy
    assert "| energy per 1,000 predictions (J), best of 3 |" in text


def test_less_accurate_model_fails_on_accuracy(family, db, tmp_path):
    code, text = run(tmp_path, less_accurate(), "--format", "text")
    assert code == 1
    assert text.startswith("energy check FAILED")
    assert "below the family's floor" in text
    assert "grows" not in text  # a linear model is far cheaper


def test_unreadable_candidate_and_unknown_family_exit_2(family, db, tmp_path):
    from django.core.management import CommandError

    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not onnx")
    with pytest.raises(CommandError, match="not a loadable ONNX model") as bad:
        call_command("energy_check", str(path), "--family", "digits-classifier")
    assert bad.value.returncode == 2
    with pytest.raises(CommandError, match="no model family") as unknown:
        call_command("energy_check", str(path), "--family", "nope")
    assert unknown.value.returncode == 2
    with pytest.raises(CommandError, match="percentage"):
        call_command("energy_check", str(path), "--family", "digits-classifier", "--max-increase", "lots")


def test_candidates_api(family, db, make_tenant, api_client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = api_client_for(make_tenant())
    response = client.post("/v1/models/digits-classifier/candidates",
                           {"file": SimpleUploadedFile("m.onnx", heavier(family.default_bytes))}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["passed"] is False
    assert body["statement_markdown"].startswith("### Energy impact: FAIL")
    junk = client.post("/v1/models/digits-classifier/candidates", {"file": SimpleUploadedFile("m.onnx", b"x")},
                       format="multipart")
    assert junk.status_code == 400 and junk.json()["code"] == "invalid_model"
    assert client.post("/v1/models/nope/candidates", {"file": SimpleUploadedFile("m.onnx", b"x")},
                       format="multipart").status_code == 404
    viewer = api_client_for(make_tenant(), scopes=["predict"])
    assert viewer.post("/v1/models/digits-classifier/candidates", {"file": SimpleUploadedFile("m.onnx", b"x")},
                       format="multipart").status_code == 403
