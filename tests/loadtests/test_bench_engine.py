"""loadtests.bench.engine and gpu_check: in-process throughput on the tiny fixture models (CPU, short
runs), real test rows encoded as each model's input, and the GPU check script without a GPU and without
pydantic, FastAPI or TensorFlow. The ``gpu`` tests check CUDA's provider and its 1e-4 agreement with CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from loadtests.bench.engine import cuda_matches_cpu, engine_throughput, onnx_file, real_test_rows
from modelyard.datasets import load_boston
from modelyard.onnxrun import CudaOptions, CudaUnavailable

ROOT = Path(__file__).resolve().parents[2]


def says_no_cuda(message: str) -> bool:
    return "fell back to CPU" in message or "cannot create a CUDA session" in message


def boston(fixture_root) -> tuple[Path, np.ndarray]:
    with np.load(fixture_root / "repo" / "boston" / "1" / "reference.npz") as z:
        return onnx_file(fixture_root / "repo", "boston"), z["x"].astype(np.float32)


def inputs(fixture_root, name: str, n: int = 1000) -> np.ndarray:
    """Boston's reference rows, or random multi-hot rows of the text model's width, cycled to ``n``."""
    if name == "boston":
        x = boston(fixture_root)[1]
        return x[np.arange(n) % len(x)]
    width = json.loads((fixture_root / "repo" / name / "1" / "manifest.json").read_text())["inputs"][0]["shape"][1]
    return (np.random.default_rng(0).random((n, width)) < 0.1).astype(np.float32)


def test_engine_throughput_on_cpu(fixture_root):
    path, x = boston(fixture_root)
    rows = engine_throughput(path, x, batch_sizes=(1, 8, 300), seconds=0.05, repeats=2)
    assert [r["batch"] for r in rows] == [1, 8, 300]
    for r in rows:
        assert (r["device"], r["provider"], r["io_binding"], r["cuda_graph"]) == (
            "cpu",
            "CPUExecutionProvider",
            False,
            False,
        )
        assert r["spread"][0] <= r["rows_per_s"] <= r["spread"][1] and r["rows_per_s"] > 0
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["calls"] >= 2


def test_engine_on_cuda_never_measures_a_cpu_fallback(fixture_root):
    path, x = boston(fixture_root)
    try:
        engine_throughput(path, x, batch_sizes=(1,), device="cuda", seconds=0.01, repeats=1)
    except CudaUnavailable as e:
        assert says_no_cuda(str(e))
    else:
        pytest.skip("a usable CUDA GPU is present here")


def test_onnx_file_names_the_missing_variant(fixture_root):
    with pytest.raises(FileNotFoundError, match="no ONNX variant 'onnx_int8'.*modelyard export boston"):
        onnx_file(fixture_root / "repo", "boston", "onnx_int8")
    with pytest.raises(FileNotFoundError, match="no model 'mnist'"):
        onnx_file(fixture_root / "repo", "mnist")


def test_real_test_rows_are_encoded_as_each_model_input(fixture_root, data_dir):
    repo = fixture_root / "repo"
    b = real_test_rows(repo, "boston", data_dir, 1000)
    np.testing.assert_array_equal(b, load_boston(data_dir).x_test)  # all 102 test rows, feature order kept
    for name in ("imdb", "reuters"):
        x = real_test_rows(repo, name, data_dir, 40)
        assert x.shape == (40, 50) and x.dtype == np.float32  # the fixture models' num_words
        assert set(np.unique(x)) == {0.0, 1.0} and x[:, 1].all()  # multi-hot, start mark in every row


def test_gpu_check_needs_only_numpy_and_onnxruntime(fixture_root, data_dir, tmp_path):
    """Run with pydantic, FastAPI, TensorFlow, nvidia-ml-py and serving made unimportable."""
    code = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {{"pydantic", "pydantic_settings", "fastapi", "starlette", "tensorflow", "typer",
                                   "rich", "pynvml", "serving", "prometheus_client"}}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from loadtests.bench.gpu_check import main
sys.exit(main(["--repo", {str(fixture_root / "repo")!r}, "--data-dir", {str(data_dir)!r}, "--out", {str(tmp_path)!r},
               "--batch-sizes", "1,8", "--seconds", "0.02", "--repeats", "1", "--rows", "50", "--no-compare"]))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [m["model"] for m in report["results"]] == ["imdb", "reuters", "boston"]
    assert "| model | batch | CPU rows/s |" in r.stdout and (tmp_path / "gpu_check.md").is_file()
    for m in report["results"]:
        assert [row["batch"] for row in m["cpu"]] == [1, 8] and m["cpu"][0]["rows_per_s"] > 0
    if r.returncode == 1:  # no GPU: every model says why, nothing is measured as "GPU"
        assert all(says_no_cuda(line) for line in report["failed"]) and len(report["failed"]) == 3
        assert all("gpu" not in m for m in report["results"])
    else:
        assert all(
            m["agreement"]["ok"] and m["gpu"][0]["provider"] == "CUDAExecutionProvider" for m in report["results"]
        )


@pytest.mark.gpu
@pytest.mark.parametrize("graph", [False, True], ids=["io-binding", "cuda-graph"])
def test_cuda_matches_cpu_on_every_fixture_model(cuda_gpu, fixture_root, graph):
    for name in ("imdb", "reuters", "boston"):
        check = cuda_matches_cpu(
            onnx_file(fixture_root / "repo", name), inputs(fixture_root, name), 1e-4, CudaOptions(cuda_graph=graph)
        )
        assert check["provider"] == "CUDAExecutionProvider" and check["ok"], (name, check)


@pytest.mark.gpu
def test_engine_throughput_on_cuda(cuda_gpu, fixture_root):
    path, x = boston(fixture_root)
    for r in engine_throughput(path, x, batch_sizes=(1, 64), device="cuda", seconds=0.05, repeats=1):
        assert r["provider"] == "CUDAExecutionProvider" and r["io_binding"] and r["rows_per_s"] > 0
