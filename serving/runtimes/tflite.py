"""TFLite through ai-edge-litert (no TensorFlow). The input is resized to each batch's shape."""

from __future__ import annotations

import threading

import numpy as np

from serving.runtimes.base import Runtime, RuntimeLoadError


class TFLiteRuntime(Runtime):
    name = "tflite"

    def load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter
        if self.requested_device == "cuda":
            raise RuntimeLoadError("--device cuda: the TFLite runtime runs on CPU only; use --runtime onnx")
        if not self.path.is_file():
            raise RuntimeLoadError(f"{self.path}: no such TFLite file")
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
            self.interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001
            raise RuntimeLoadError(f"{self.path}: TFLite cannot load it: {e}") from None
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        if inp["dtype"] != np.float32:
            raise RuntimeLoadError(f"{self.path}: input is {inp['dtype'].__name__}, the server needs float32 I/O "
                                   "(int8-I/O files are for edge devices)")
        self.input_name, self.output_name = inp["name"], out["name"]
        self._in, self._out = inp["index"], out["index"]
        self._shape = tuple(inp["shape"])
        self._lock = threading.Lock()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            if x.shape != self._shape:
                self.interpreter.resize_tensor_input(self._in, list(x.shape), strict=False)
                self.interpreter.allocate_tensors()
                self._shape = x.shape
            self.interpreter.set_tensor(self._in, x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self._out).copy()


RUNTIME = TFLiteRuntime
