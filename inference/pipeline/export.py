"""ONNX export (skl2onnx), int8 quantisation (through inference.runtime) and weight counts."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.neural_network import MLPClassifier

from inference import runtime
from inference.pipeline.dataset import N_FEATURES, PIXEL_MAX

INPUT_NAME = "input"
# Pinned so the same weights always give the same bytes (and so the same artifact),
# whatever skl2onnx's default becomes; onnxruntime 1.32 runs opset 17.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# Inputs that hold weights, per operator (index into node.input): what "parameters" counts.
_WEIGHT_INPUTS = {"MatMul": (1,), "Gemm": (1, 2), "MatMulInteger": (1,), "Add": (1,)}


def mlp_onnx(*, model: MLPClassifier, graph_name: str) -> bytes:
    """The classifier as ONNX: input float32 [None, 64] of raw grey levels 0..16, outputs
    "label" (int64 [None]) and "probabilities" (float32 [None, 10]), no ZipMap.

    The network was trained on 0..1 inputs; dividing the first layer's weights by 16
    makes the graph take raw grey levels with no extra node.
    """
    exported = copy.deepcopy(model)
    exported.coefs_[0] = (exported.coefs_[0] / PIXEL_MAX).astype(exported.coefs_[0].dtype)
    proto = to_onnx(exported, initial_types=[(INPUT_NAME, FloatTensorType([None, N_FEATURES]))],
                    options={id(exported): {"zipmap": False}}, target_opset=TARGET_OPSET)
    proto.graph.name = graph_name
    proto.doc_string = ""
    return proto.SerializeToString()


def int8_quantise(*, content: bytes) -> bytes:
    """Dynamic int8 quantisation of the weights (activations quantised per call)."""
    with tempfile.TemporaryDirectory(prefix="greentier-quantise-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(content)
        runtime.quantize_int8_dynamic(src, dst)
        return dst.read_bytes()


def weight_count(*, content: bytes) -> int:
    """Non-zero weights and biases in an ONNX graph (MatMul/Gemm/MatMulInteger weights
    and Add biases held as initializers), so a pruned or smaller model counts less."""
    graph = onnx.load_from_string(content).graph
    initializers = {init.name: init for init in graph.initializer}
    counted: set[str] = set()
    total = 0
    for node in graph.node:
        for index in _WEIGHT_INPUTS.get(node.op_type, ()):
            if index < len(node.input) and node.input[index] in initializers and node.input[index] not in counted:
                counted.add(node.input[index])
                total += int(np.count_nonzero(numpy_helper.to_array(initializers[node.input[index]])))
    return total
