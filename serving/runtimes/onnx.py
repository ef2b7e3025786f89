"""onnxruntime (the onnxruntime-gpu package), opened by :mod:`modelyard.onnxrun` with the session options
that export's validation, the engine benchmark and the GPU check use too. CUDA is used only when a session
really runs on it: ORT silently falls back to CPU, so the providers of the created session are checked."""

from __future__ import annotations

import logging

import numpy as np

from modelyard import onnxrun
from serving.runtimes.base import Runtime, RuntimeLoadError

log = logging.getLogger("serving.runtimes.onnx")

_CUDA_FAILURE: str | None = None
"""Why CUDA failed, once it has: probed once per process, since a failed CUDA provider load prints
native errors every time it is tried."""


class OnnxRuntime(Runtime):
    name = "onnx"

    def load(self) -> None:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        if not self.path.is_file():
            raise RuntimeLoadError(f"{self.path}: no such ONNX file")
        global _CUDA_FAILURE
        sess = None
        if (
            self.requested_device in ("auto", "cuda")
            and _CUDA_FAILURE is None
            and onnxrun.CUDA in ort.get_available_providers()
        ):
            try:
                sess = onnxrun.open_session(self.path, "cuda", self.threads, self.cuda)
            except onnxrun.CudaUnavailable as e:
                _CUDA_FAILURE = str(e)
                if self.requested_device == "auto":
                    log.info("no usable GPU; running on CPU", extra={"reason": _CUDA_FAILURE})
        if sess is None:
            if self.requested_device == "cuda":
                raise RuntimeLoadError(
                    "--device cuda: onnxruntime cannot run on a GPU here "
                    f"({_CUDA_FAILURE or 'this onnxruntime has no CUDAExecutionProvider'}); "
                    "use --device auto or cpu"
                )
            try:
                sess = onnxrun.open_session(self.path, "cpu", self.threads)
            except Exception as e:  # noqa: BLE001
                raise RuntimeLoadError(f"{self.path}: onnxruntime cannot load it: {e}") from None
        self.session = sess
        self._predictor = onnxrun.Predictor(sess, self.cuda)
        self._run = self._predictor.run
        self.provider = self._predictor.provider
        self.device = "cuda" if self.provider == onnxrun.CUDA else "cpu"
        # Read names from the session: they differ by conversion route.
        self.input_name = self._predictor.input_name
        self.output_name = self._predictor.output_name

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._run(x)

    def warmup(self, x: np.ndarray) -> None:
        super().warmup(x)
        self._predictor.warmup(x)

    def describe(self) -> dict:
        return super().describe() | {"providers": self.session.get_providers()}


RUNTIME = OnnxRuntime
