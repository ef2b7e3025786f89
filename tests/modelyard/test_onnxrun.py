"""modelyard.onnxrun: CUDA provider options from settings, and every run path (plain, IO binding, CUDA
graph buckets) giving the model's answers. Without a GPU the bound and graph paths run on a CPU session,
which checks their binding, padding and chunking; on a GPU the ``gpu`` tests check them on CUDA."""

from __future__ import annotations

import os

import numpy as np
import pytest

from modelyard.onnxrun import (
    CPU,
    CUDA,
    MAX_DEFAULT_THREADS,
    CudaOptions,
    CudaUnavailable,
    Predictor,
    describe_options,
    intra_op_threads,
    open_session,
)
from modelyard.settings import Settings

ROWS = (1, 3, 8, 64, 65, 1000)


def expected(tiny_onnx, x: np.ndarray) -> np.ndarray:
    with np.load(tiny_onnx.with_suffix(".npz")) as z:
        return 1 / (1 + np.exp(-(x @ z["W"] + z["b"])))


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(1000, 5)).astype(np.float32)


def test_provider_options_suit_small_dense_models():
    opts = CudaOptions().provider_options()
    assert opts == {
        "device_id": "0",
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",
        "use_tf32": "0",
        "enable_cuda_graph": "0",
    }
    assert CudaOptions(mem_limit_mb=512).provider_options()["gpu_mem_limit"] == str(512 * 1024 * 1024)


def test_cuda_options_come_from_settings(monkeypatch):
    for k, v in {
        "DEVICE_ID": "1",
        "MEM_LIMIT_MB": "256",
        "ARENA_EXTEND_STRATEGY": "kNextPowerOfTwo",
        "CONV_ALGO_SEARCH": "EXHAUSTIVE",
        "USE_TF32": "true",
        "GRAPH": "1",
    }.items():
        monkeypatch.setenv(f"MODELYARD_CUDA_{k}", v)
    assert Settings().cuda_options() == CudaOptions(
        device_id=1,
        mem_limit_mb=256,
        arena_extend_strategy="kNextPowerOfTwo",
        conv_algo_search="EXHAUSTIVE",
        use_tf32=True,
        cuda_graph=True,
    )


@pytest.mark.parametrize(
    "io_binding,graph",
    [(None, False), (True, False), (True, True)],
    ids=["cpu-run", "io-binding", "cuda-graph-buckets"],
)
def test_every_run_path_gives_the_models_answers(tiny_onnx, x, io_binding, graph):
    p = Predictor(open_session(tiny_onnx), CudaOptions(cuda_graph=graph, graph_max_rows=64), io_binding)
    assert p.provider == CPU and p.io_binding == bool(io_binding) and p.cuda_graph == graph
    p.warmup(x[:8])
    if graph:
        assert sorted(p._graphs) == [1, 2, 4, 8, 16, 32, 64]  # every padded size captured before traffic
    for n in ROWS:  # sizes between buckets, one past the largest, many chunks
        y = p.run(x[:n])
        assert y.shape == (n, 3)
        np.testing.assert_allclose(y, expected(tiny_onnx, x[:n]), atol=1e-6)


def test_cuda_without_a_gpu_is_an_error_not_a_cpu_session(tiny_onnx):
    try:
        open_session(tiny_onnx, "cuda")
    except CudaUnavailable as e:
        assert "fell back to CPU" in str(e) or "cannot create a CUDA session" in str(e)
    else:
        pytest.skip("a usable CUDA GPU is present here")


@pytest.mark.gpu
@pytest.mark.parametrize("graph", [False, True], ids=["io-binding", "cuda-graph"])
def test_cuda_session_runs_on_cuda_and_matches_cpu(cuda_gpu, tiny_onnx, x, graph):
    opts = CudaOptions(cuda_graph=graph, graph_max_rows=64)
    p = Predictor(open_session(tiny_onnx, "cuda", 1, opts), opts)
    assert p.provider == CUDA and p.io_binding and p.cuda_graph == graph
    p.warmup(x[:8])
    for n in ROWS:
        np.testing.assert_allclose(p.run(x[:n]), expected(tiny_onnx, x[:n]), atol=1e-4)
    if graph:
        with pytest.raises(ValueError, match="IO binding"):
            Predictor(p.session, opts, io_binding=False)


def test_sessions_run_with_the_servers_options(tiny_onnx):
    """Every session (serving, export's validation, the benchmarks) gets these: the thread default, one
    inter-op thread, no spinning."""
    assert describe_options(open_session(tiny_onnx)) == {
        "provider": CPU,
        "intra_op_threads": min(MAX_DEFAULT_THREADS, os.cpu_count() or 1),
        "inter_op_threads": 1,
        "spinning": False,
    }
    assert describe_options(open_session(tiny_onnx, threads=3))["intra_op_threads"] == intra_op_threads(3) == 3
