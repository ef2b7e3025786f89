"""Fixtures shared by every stage's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The genuine Keras dataset files (MODELYARD_DATA_DIR, else ../shared/datasets beside the checkout)."""
    path = Path(os.environ.get("MODELYARD_DATA_DIR") or ROOT.parent / "shared" / "datasets")
    if not (path / "reuters.npz").is_file():
        pytest.skip(f"real Keras datasets not found in {path}; set MODELYARD_DATA_DIR")
    return path


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory) -> Path:
    """Tiny models that follow the export contract, for the serving and load tests, built once per session
    in a subprocess so that TensorFlow never loads in the test process: ``<root>/repo`` (imdb, reuters,
    boston v1) and ``<root>/spare/imdb/1`` (another imdb version).

    Set MODELYARD_SERVING_FIXTURES=DIR to build once into DIR and reuse it across runs."""
    cached = os.environ.get("MODELYARD_SERVING_FIXTURES")
    root = Path(cached) if cached else tmp_path_factory.mktemp("serving-fixtures")
    if not (root / "spare" / "imdb" / "1" / "manifest.json").is_file():
        shutil.rmtree(root / "repo", ignore_errors=True)
        shutil.rmtree(root / "spare", ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        builder = Path(__file__).parent / "serving" / "build_fixtures.py"
        subprocess.run(
            [sys.executable, str(builder), str(root / "repo")], check=True, cwd=ROOT, capture_output=True, timeout=600
        )
    return root


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """A tiny dense ONNX model, ``sigmoid(x @ W + b)`` from ``x`` [N, 5] to ``y`` [N, 3] (``W`` and ``b``
    saved beside it as ``tiny.npz``), built with the onnx package alone, in no time."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    d = tmp_path_factory.mktemp("tiny-onnx")
    onnx.save(model, d / "tiny.onnx")
    np.savez(d / "tiny.npz", W=w, b=b)
    return d / "tiny.onnx"


@pytest.fixture(scope="session")
def cuda_gpu(tiny_onnx) -> None:
    """Skips the test, with the reason, unless onnxruntime really runs a session on a CUDA GPU here."""
    from modelyard.onnxrun import open_session

    try:
        open_session(tiny_onnx, "cuda")
    except Exception as e:  # noqa: BLE001 - CudaUnavailable, or the CUDA provider failing outright
        pytest.skip(f"no usable CUDA GPU: {e}")
