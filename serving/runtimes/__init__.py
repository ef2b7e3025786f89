"""Every serving runtime, by name, in :data:`RUNTIMES`: what serving needs to know of one before importing it (the
module is imported lazily, so that only the runtime in use is loaded). A runtime's name is also the manifest
``format`` of the artifacts it loads. Adding a runtime is one module with a :class:`Runtime` subclass named
``RUNTIME`` and one :func:`register` line below; the ``--runtime`` choices, the startup checks, the default variant
and the V2 metadata's ``platform`` all come from here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from modelyard.errors import ModelyardError
from modelyard.extras import require


@dataclass(frozen=True)
class RuntimeInfo:
    module: str
    """Where the :class:`Runtime` subclass named ``RUNTIME`` lives."""
    default_variant: str
    """The manifest variant served unless ``--variant`` (or the serving config) names another."""
    platform: str
    """Its name in KServe V2 and Triton metadata (``platform``)."""
    requires: tuple[str, ...] = ()
    """Modules it imports beyond the serve extra: checked at startup, naming the extra to install."""
    gpu: bool = False
    """Whether it can run on ``--device cuda``."""


RUNTIMES: dict[str, RuntimeInfo] = {}


def register(name: str, info: RuntimeInfo) -> None:
    RUNTIMES[name] = info


register("onnx", RuntimeInfo("serving.runtimes.onnx", "onnx_fp32", "onnxruntime_onnx", ("onnxruntime",), gpu=True))
register("tflite", RuntimeInfo("serving.runtimes.tflite", "tflite_fp32", "tflite", ("ai_edge_litert",)))
register(
    "savedmodel",
    RuntimeInfo("serving.runtimes.savedmodel", "savedmodel", "tensorflow_savedmodel", ("tensorflow",), gpu=True),
)


def runtime_info(name: str) -> RuntimeInfo:
    """The runtime named by ``--runtime``; an unknown name is one line naming the known ones."""
    if name not in RUNTIMES:
        raise ModelyardError(
            f"--runtime (env MODELYARD_RUNTIME): '{name}' is not a runtime; choose from {', '.join(RUNTIMES)}"
        )
    return RUNTIMES[name]


def require_runtime(name: str) -> None:
    """Fail at startup, naming the extra to install, when the runtime's libraries are missing."""
    require(f"--runtime {name}", *runtime_info(name).requires)


def runtime_class(fmt: str) -> type:
    """The :class:`~serving.runtimes.base.Runtime` subclass for an artifact format (a manifest variant's
    ``format``); imported only now, so that this table stays as light as the ``modelyard`` command needs."""
    from serving.runtimes.base import RuntimeLoadError

    if fmt not in RUNTIMES:
        raise RuntimeLoadError(f"no serving runtime for format '{fmt}' (runtimes: {', '.join(RUNTIMES)})")
    return importlib.import_module(RUNTIMES[fmt].module).RUNTIME


__all__ = ["RUNTIMES", "RuntimeInfo", "register", "require_runtime", "runtime_class", "runtime_info"]
