"""The one way a TFLite file is opened: ai-edge-litert's ``Interpreter`` (no TensorFlow) with the options the
server runs (its threads: :func:`modelyard.onnxrun.intra_op_threads`), for serving
(``serving/runtimes/tflite.py``) and for export's validation and the latency it writes into the manifest
(``export/runtimes.py``). numpy only at import; ai-edge-litert is imported when a file is opened."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelyard.onnxrun import intra_op_threads


def open_interpreter(path: Path | str, threads: int = 0):
    """An allocated ``Interpreter`` of the file at ``path`` on ``threads`` threads (0: the runtimes' default)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=intra_op_threads(threads))
    interpreter.allocate_tensors()
    return interpreter


def describe_options(threads: int = 0) -> dict:
    """What :func:`open_interpreter` runs a file with, as recorded beside a latency (the manifest's variant
    details): the interpreter cannot be asked."""
    return {"threads": intra_op_threads(threads)}


class Predictor:
    """One interpreter's first input -> first output on float32 batches ``[N, ...]``: the input is resized to
    each batch's shape, and a file with integer I/O gets its input quantized and its output dequantized with
    the file's own scale and zero point. Not thread-safe (one caller at a time)."""

    def __init__(self, interpreter):
        self.interpreter = interpreter
        self._details()

    def _details(self) -> None:
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.shape = tuple(self.input["shape"])

    def run(self, x: np.ndarray) -> np.ndarray:
        it = self.interpreter
        if x.shape != self.shape:
            it.resize_tensor_input(self.input["index"], list(x.shape), strict=False)
            it.allocate_tensors()
            self._details()
        if self.input["dtype"] != np.float32:
            scale, zero = self.input["quantization"]
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])
        it.set_tensor(self.input["index"], x)
        it.invoke()
        y = it.get_tensor(self.output["index"])
        if self.output["dtype"] != np.float32:
            scale, zero = self.output["quantization"]
            return (y.astype(np.float32) - zero) * np.float32(scale)
        return y.copy()
