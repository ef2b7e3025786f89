"""GPU name and memory from NVML (the nvidia-ml-py package, imported as ``pynvml``), for serving's
metadata and metrics and the engine benchmark. Without the package, an NVIDIA driver or a GPU there
are no facts (``None``), never an error."""

from __future__ import annotations

import os

_nvml = None
"""The ``pynvml`` module once NVML is initialised; False once that failed (it is tried once)."""


def _init():
    global _nvml
    if _nvml is None:
        try:
            import pynvml

            pynvml.nvmlInit()
            _nvml = pynvml
        except Exception:  # noqa: BLE001 - ImportError, or NVMLError (no library, driver or GPU)
            _nvml = False
    return _nvml or None


def _handle(nv, cuda_device_id: int):
    """NVML's handle of CUDA device ``cuda_device_id`` (None: CUDA has no such device). NVML counts every
    GPU, CUDA only those in CUDA_VISIBLE_DEVICES (indices or UUIDs) when it is set."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return nv.nvmlDeviceGetHandleByIndex(cuda_device_id)
    visible = [v.strip() for v in env.split(",") if v.strip()]
    if cuda_device_id >= len(visible):
        return None
    entry = visible[cuda_device_id]
    return nv.nvmlDeviceGetHandleByIndex(int(entry)) if entry.isdigit() else nv.nvmlDeviceGetHandleByUUID(entry)


def gpu_facts(cuda_device_id: int = 0) -> dict | None:
    """``{"index", "name", "memory_used_bytes", "memory_total_bytes"}`` of a CUDA device, or None.
    Memory used counts every process on the GPU, as nvidia-smi does."""
    nv = _init()
    if nv is None:
        return None
    try:
        h = _handle(nv, cuda_device_id)
        if h is None:
            return None
        name = nv.nvmlDeviceGetName(h)
        mem = nv.nvmlDeviceGetMemoryInfo(h)
    except nv.NVMLError:
        return None
    return {
        "index": cuda_device_id,
        "name": name.decode() if isinstance(name, bytes) else name,
        "memory_used_bytes": int(mem.used),
        "memory_total_bytes": int(mem.total),
    }
