"""modelyard.gpu: GPU facts from NVML, and none (never an error) without the package, a driver or a GPU.
A stand-in pynvml checks the facts and the CUDA_VISIBLE_DEVICES mapping where there is no GPU."""

from __future__ import annotations

import sys
import types

import pytest

from modelyard import gpu


class FakeNVML(types.ModuleType):
    """pynvml with two GPUs (index 0 and 1, UUIDs GPU-a and GPU-b), or none when ``init_error``."""

    class NVMLError(Exception):
        pass

    def __init__(self, init_error: bool = False):
        super().__init__("pynvml")
        self.init_error = init_error

    def nvmlInit(self):
        if self.init_error:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlDeviceGetHandleByIndex(self, i):
        if i > 1:
            raise self.NVMLError("Invalid Argument")
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return {"GPU-a": 0, "GPU-b": 1}[uuid]

    def nvmlDeviceGetName(self, h):
        return ["NVIDIA H100 80GB HBM3", "NVIDIA H200"][h]

    def nvmlDeviceGetMemoryInfo(self, h):
        return types.SimpleNamespace(used=(h + 1) * 1000, total=80 * 2**30)


@pytest.fixture
def nvml(monkeypatch):
    def install(module):
        monkeypatch.setattr(gpu, "_nvml", None)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    yield install


def test_no_package_or_no_gpu_means_no_facts(nvml):
    nvml(None)  # import pynvml raises ImportError
    assert gpu.gpu_facts(0) is None
    nvml(FakeNVML(init_error=True))
    assert gpu.gpu_facts(0) is None
    assert gpu.gpu_facts(0) is None  # init is tried once


def test_facts_of_the_cuda_device(nvml, monkeypatch):
    nvml(FakeNVML())
    assert gpu.gpu_facts(0) == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "memory_used_bytes": 1000,
        "memory_total_bytes": 80 * 2**30,
    }
    assert gpu.gpu_facts(5) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-b")
    assert gpu.gpu_facts(0)["name"] == "NVIDIA H200" and gpu.gpu_facts(1) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    assert gpu.gpu_facts(1)["name"] == "NVIDIA H100 80GB HBM3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu.gpu_facts(0) is None


def test_real_nvml_never_raises():
    facts = gpu.gpu_facts(0)
    assert facts is None or {"name", "memory_used_bytes", "memory_total_bytes"} <= set(facts)
