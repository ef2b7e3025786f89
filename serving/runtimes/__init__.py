"""Runtimes by name, imported lazily so that only the runtime in use is loaded."""

from __future__ import annotations

import importlib

from serving.runtimes.base import Runtime, RuntimeLoadError

_MODULES = {"onnx": "serving.runtimes.onnx", "tflite": "serving.runtimes.tflite",
            "savedmodel": "serving.runtimes.savedmodel"}

DEFAULT_VARIANT = {"onnx": "onnx_fp32", "tflite": "tflite_fp32", "savedmodel": "savedmodel"}
"""The variant each runtime serves unless ``--variant`` names another."""


def runtime_class(fmt: str) -> type[Runtime]:
    """The runtime class for an artifact format (a manifest variant's ``format``)."""
    if fmt not in _MODULES:
        raise RuntimeLoadError(f"no serving runtime for format '{fmt}' (runtimes: {', '.join(_MODULES)})")
    return importlib.import_module(_MODULES[fmt]).RUNTIME


__all__ = ["Runtime", "RuntimeLoadError", "runtime_class", "DEFAULT_VARIANT"]
