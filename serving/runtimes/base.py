"""The one runtime interface. Adding a runtime means one new file with a :class:`Runtime` subclass
named ``RUNTIME`` and one line in ``serving/runtimes/__init__.py``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from modelyard.errors import ModelyardError
from modelyard.manifest import VariantRecord
from modelyard.onnxrun import CudaOptions, intra_op_threads


class RuntimeLoadError(ModelyardError):
    """An artifact cannot be loaded or run on the requested device."""


class Runtime(ABC):
    """Loads one artifact and predicts float32 batches ``[N, ...] -> [N, ...]`` (first input, first output).

    ``predict`` is called from one worker thread at a time per loaded artifact (the batcher
    serializes calls), never on the event loop.
    """

    name: str = "base"

    def __init__(
        self,
        path: Path,
        variant: VariantRecord,
        device: str = "auto",
        threads: int = 0,
        cuda: CudaOptions | None = None,
    ):
        self.path = Path(path)
        self.variant = variant
        self.requested_device = device
        self.threads = intra_op_threads(threads)
        """Threads per model (0: the default that export's validation also times with)."""
        self.cuda = cuda or CudaOptions()
        """CUDA provider options, for runtimes that can run on a GPU."""
        self.device = "cpu"
        """The device actually used, reported in logs, metadata and metrics."""
        self.provider: str | None = None
        """The execution provider actually used, for runtimes that have one (onnxruntime)."""
        self.input_name = variant.inputs[0].name if variant.inputs else ""
        self.output_name = variant.outputs[0].name if variant.outputs else ""

    @abstractmethod
    def load(self) -> None:
        """Load the artifact; raise :class:`RuntimeLoadError` with a clear message when it cannot."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """One batch in, the model's first output for it out (float32, same first dimension)."""

    def warmup(self, x: np.ndarray) -> None:
        """Run a few batches of representative shape so the first real request is not slow."""
        for n in (1, min(len(x), 8) or 1):
            out = self.predict(x[:n])
            if out.shape[0] != n:
                raise RuntimeLoadError(f"{self.path}: warm-up returned {out.shape[0]} rows for {n}")

    def describe(self) -> dict:
        return {
            "runtime": self.name,
            "device": self.device,
            "provider": self.provider,
            "input": self.input_name,
            "output": self.output_name,
        }

    def close(self) -> None:
        """Release the artifact (best effort)."""
