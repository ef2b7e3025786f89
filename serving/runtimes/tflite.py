"""TFLite through ai-edge-litert (no TensorFlow), opened by :mod:`modelyard.tfliterun` with the options export's
validation uses too. The input is resized to each batch's shape."""

from __future__ import annotations

import threading

import numpy as np

from modelyard import tfliterun
from serving.runtimes.base import Runtime, RuntimeLoadError


class TFLiteRuntime(Runtime):
    name = "tflite"

    def load(self) -> None:
        if self.requested_device == "cuda":
            raise RuntimeLoadError("--device cuda: the TFLite runtime runs on CPU only; use --runtime onnx")
        if not self.path.is_file():
            raise RuntimeLoadError(f"{self.path}: no such TFLite file")
        try:
            self.interpreter = tfliterun.open_interpreter(self.path, self.threads)
        except Exception as e:  # noqa: BLE001
            raise RuntimeLoadError(f"{self.path}: TFLite cannot load it: {e}") from None
        self._predictor = tfliterun.Predictor(self.interpreter)
        inp, out = self._predictor.input, self._predictor.output
        if inp["dtype"] != np.float32:
            raise RuntimeLoadError(
                f"{self.path}: input is {inp['dtype'].__name__}, the server needs float32 I/O "
                "(int8-I/O files are for edge devices)"
            )
        self.input_name, self.output_name = inp["name"], out["name"]
        self._lock = threading.Lock()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._predictor.run(x)


RUNTIME = TFLiteRuntime
