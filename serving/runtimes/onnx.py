"""onnxruntime (the onnxruntime-gpu package). CUDA is used only when a session really runs on it:
ORT silently falls back to CPU, so the providers of the created session are checked."""

from __future__ import annotations

import numpy as np

from serving.runtimes.base import Runtime, RuntimeLoadError


_CUDA_WORKS: bool | None = None
"""Probed once per process: a failed CUDA provider load prints native errors every time it is tried."""


class OnnxRuntime(Runtime):
    name = "onnx"

    def _session(self, ort, providers):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        return ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)

    def load(self) -> None:
        import onnxruntime as ort
        ort.set_default_logger_severity(3)
        if not self.path.is_file():
            raise RuntimeLoadError(f"{self.path}: no such ONNX file")
        global _CUDA_WORKS
        sess = None
        if (self.requested_device in ("auto", "cuda") and _CUDA_WORKS is not False
                and "CUDAExecutionProvider" in ort.get_available_providers()):
            try:
                sess = self._session(ort, ["CUDAExecutionProvider", "CPUExecutionProvider"])
                if sess.get_providers()[0] != "CUDAExecutionProvider":
                    sess = None
            except Exception:  # noqa: BLE001 - any CUDA failure means: no usable GPU
                sess = None
            _CUDA_WORKS = sess is not None
        if sess is None:
            if self.requested_device == "cuda":
                raise RuntimeLoadError("--device cuda: onnxruntime cannot run on a GPU here "
                                       "(no CUDA device or driver; CUDAExecutionProvider fell back to CPU); "
                                       "use --device auto or cpu")
            try:
                sess = self._session(ort, ["CPUExecutionProvider"])
            except Exception as e:  # noqa: BLE001
                raise RuntimeLoadError(f"{self.path}: onnxruntime cannot load it: {e}") from None
        self.session = sess
        self.device = "cuda" if sess.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        # Read names from the session: they differ by conversion route.
        self.input_name = sess.get_inputs()[0].name
        self.output_name = sess.get_outputs()[0].name
        self._outputs = [self.output_name]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self._outputs, {self.input_name: x})[0]

    def describe(self) -> dict:
        return super().describe() | {"providers": self.session.get_providers()}


RUNTIME = OnnxRuntime
