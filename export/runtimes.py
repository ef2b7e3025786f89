"""Each artifact loaded with its own runtime: Keras, TensorFlow (SavedModel), ai-edge-litert's
Interpreter (TFLite) and onnxruntime (ONNX). Every runner takes float32 rows and returns float32
outputs, reads its input/output names, dtypes and shapes from the artifact itself, and quantizes or
dequantizes where the file has integer I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelyard.manifest import TensorSpec
from tfshared.native_output import native_output_held

def _dtype(name: str) -> str:
    name = str(name)
    for key in ("float32", "int8", "uint8", "int32", "int64"):
        if key in name and not (key == "int8" and "uint8" in name):
            return key
    if "float" in name:  # ONNX 'tensor(float)'
        return "float32"
    return "float32"


def _dims(shape) -> list[int | None]:
    """Static dimensions as ints; dynamic ones (None, -1, ONNX dim_param names) as None."""
    out = []
    for d in shape:
        try:
            v = int(d)
        except (TypeError, ValueError):
            v = None
        out.append(None if v is None or v < 0 else v)
    return out


class Runner:
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KerasRunner(Runner):
    def __init__(self, model):
        self.model = model
        self.inputs = [TensorSpec(name=t.name.split(":")[0], dtype=_dtype(t.dtype.name), shape=_dims(t.shape))
                       for t in model.inputs]
        self.outputs = [TensorSpec(name=n, dtype="float32", shape=_dims(t.shape))
                        for n, t in zip(model.output_names, model.outputs)]

    def predict(self, x):
        return np.asarray(self.model(x, training=False), np.float32)


class SavedModelRunner(Runner):
    def __init__(self, path: Path, signature: str = "serving_default"):
        from tfshared.tfkeras import tf

        self.tf = tf
        self.loaded = tf.saved_model.load(str(path))
        self.fn = self.loaded.signatures[signature]
        _, kwargs = self.fn.structured_input_signature
        self.inputs = [TensorSpec(name=k, dtype=_dtype(s.dtype.name), shape=_dims(s.shape.as_list()))
                       for k, s in kwargs.items()]
        self.outputs = [TensorSpec(name=k, dtype=_dtype(s.dtype.name), shape=_dims(s.shape.as_list()))
                        for k, s in self.fn.structured_outputs.items()]

    def predict(self, x):
        out = self.fn(**{self.inputs[0].name: self.tf.constant(x)})
        return np.asarray(out[self.outputs[0].name], np.float32)


class TFLiteRunner(Runner):
    def __init__(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        with native_output_held():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice
            self.interp = Interpreter(model_path=str(path), num_threads=threads)
            self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.inputs = [self._spec(d) for d in self.interp.get_input_details()]
        self.outputs = [self._spec(d) for d in self.interp.get_output_details()]
        self.batch = None

    @staticmethod
    def _spec(d) -> TensorSpec:
        shape = d.get("shape_signature", d["shape"])
        return TensorSpec(name=d["name"], dtype=_dtype(np.dtype(d["dtype"]).name), shape=_dims(list(shape)))

    def _resize(self, batch: int):
        if batch != self.batch:
            shape = list(self.inp["shape"])
            shape[0] = batch
            self.interp.resize_tensor_input(self.inp["index"], shape)
            self.interp.allocate_tensors()
            self.inp = self.interp.get_input_details()[0]
            self.out = self.interp.get_output_details()[0]
            self.batch = batch

    def predict(self, x):
        self._resize(len(x))
        if self.inp["dtype"] != np.float32:
            scale, zero = self.inp["quantization"]
            info = np.iinfo(self.inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.inp["dtype"])
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        if self.out["dtype"] != np.float32:
            scale, zero = self.out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, np.float32)


class OnnxRunner(Runner):
    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [TensorSpec(name=i.name, dtype=_dtype(i.type), shape=_dims(i.shape))
                       for i in self.sess.get_inputs()]
        self.outputs = [TensorSpec(name=o.name, dtype=_dtype(o.type), shape=_dims(o.shape))
                        for o in self.sess.get_outputs()]

    def predict(self, x):
        return np.asarray(self.sess.run([self.outputs[0].name], {self.inputs[0].name: x})[0], np.float32)
