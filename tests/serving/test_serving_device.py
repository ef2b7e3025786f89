"""The device a model runs on, reported truly: with CUDA hidden (CUDA_VISIBLE_DEVICES=""), as on a machine
without a GPU, ``--device auto`` falls back to CPU and says so in metadata and metrics, and ``--device
cuda`` is a startup error. On a GPU (``gpu`` tests) the models run on CUDA and answer as on CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from serving_helpers import ROOT, reference

NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}
CPU_INFO = (
    'modelyard_model_provider_info{model="boston",provider="CPUExecutionProvider",variant="onnx_fp32",version="1"} 1.0'
)


def test_auto_without_a_gpu_runs_on_cpu_and_says_so(repo_copy, start_server):
    s = start_server(repo_copy, env=NO_GPU)
    v2 = s.client.get("/v2/models/boston").json()["parameters"]
    assert (v2["device"], v2["provider"], v2["providers"], v2["gpu"]) == (
        "cpu",
        "CPUExecutionProvider",
        ["CPUExecutionProvider"],
        None,
    )
    v1 = s.client.get("/v1/models/imdb/metadata").json()["modelyard"]
    assert (v1["device"], v1["provider"], v1["gpu"]) == ("cpu", "CPUExecutionProvider", None)
    text = s.client.get("/metrics").text
    assert CPU_INFO in text and 'device="cpu"' in text
    assert "# TYPE modelyard_gpu_memory_used_bytes gauge" in text
    assert "modelyard_gpu_memory_used_bytes{" not in text and "modelyard_gpu_memory_total_bytes{" not in text
    assert "no usable GPU; running on CPU" in s.log()


def test_device_cuda_without_a_gpu_is_a_startup_error(repo_copy):
    r = subprocess.run(
        [sys.executable, "-m", "modelyard", "serve", "--repo", str(repo_copy), "--device", "cuda", "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **NO_GPU},
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert "--device cuda: onnxruntime cannot run on a GPU here" in r.stderr and "--device auto or cpu" in r.stderr


@pytest.mark.gpu
def test_device_cuda_runs_on_the_gpu_and_answers_as_on_cpu(cuda_gpu, repo_copy, start_server, fixture_root):
    s = start_server(repo_copy, "--device", "cuda")
    meta = s.client.get("/v2/models/boston").json()["parameters"]
    assert meta["device"] == "cuda" and meta["provider"] == "CUDAExecutionProvider"
    ref = reference(fixture_root, "boston")
    r = s.client.post("/v1/models/boston:predict", json={"instances": ref["x"].tolist()})
    np.testing.assert_allclose([p["price"] for p in r.json()["predictions"]], ref["y"][:, 0], atol=1e-4)
    text = s.client.get("/metrics").text
    assert CPU_INFO.replace("CPUExecutionProvider", "CUDAExecutionProvider") in text
    if meta["gpu"] is not None:  # nvidia-ml-py found the GPU
        assert meta["gpu"]["name"] and meta["gpu"]["memory_used_bytes"] > 0
        assert f'modelyard_gpu_memory_used_bytes{{gpu="0",name="{meta["gpu"]["name"]}"}}' in text
