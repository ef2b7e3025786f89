"""Each artifact loaded with its own runtime: Keras, TensorFlow (SavedModel), and for TFLite and ONNX the
loaders serving uses (:mod:`modelyard.tfliterun`, :mod:`modelyard.onnxrun`) with the same options, so the
latency validation measures is the serving latency. Every runner takes float32 rows and returns float32
outputs, reads its input/output names, dtypes and shapes from the artifact itself, and quantizes or
dequantizes where the file has integer I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelyard import onnxrun, tfliterun
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
    options: dict | None = None
    """The options the artifact runs with (threads, spinning), for a runtime that serving shares."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KerasRunner(Runner):
    def __init__(self, model):
        self.model = model
        self.inputs = [
            TensorSpec(name=t.name.split(":")[0], dtype=_dtype(t.dtype.name), shape=_dims(t.shape))
            for t in model.inputs
        ]
        self.outputs = [
            TensorSpec(name=n, dtype="float32", shape=_dims(t.shape)) for n, t in zip(model.output_names, model.outputs)
        ]

    def predict(self, x):
        return np.asarray(self.model(x, training=False), np.float32)


class SavedModelRunner(Runner):
    def __init__(self, path: Path, signature: str = "serving_default"):
        from tfshared.tfkeras import tf

        self.tf = tf
        self.loaded = tf.saved_model.load(str(path))
        self.fn = self.loaded.signatures[signature]
        _, kwargs = self.fn.structured_input_signature
        self.inputs = [
            TensorSpec(name=k, dtype=_dtype(s.dtype.name), shape=_dims(s.shape.as_list())) for k, s in kwargs.items()
        ]
        self.outputs = [
            TensorSpec(name=k, dtype=_dtype(s.dtype.name), shape=_dims(s.shape.as_list()))
            for k, s in self.fn.structured_outputs.items()
        ]

    def predict(self, x):
        out = self.fn(**{self.inputs[0].name: self.tf.constant(x)})
        return np.asarray(out[self.outputs[0].name], np.float32)


def serving_threads() -> int:
    """The threads serving runs a model on: ``MODELYARD_THREADS`` from the one settings object (the serving
    runtimes get the same field), so that the latency recorded in the manifest is measured as served."""
    from modelyard.settings import Settings

    return Settings().threads


class TFLiteRunner(Runner):
    """A TFLite file opened by :mod:`modelyard.tfliterun`, as serving opens it."""

    def __init__(self, path: Path, threads: int | None = None):
        threads = serving_threads() if threads is None else threads
        with native_output_held():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice
            interpreter = tfliterun.open_interpreter(path, threads)
        self.predictor = tfliterun.Predictor(interpreter)
        self.inputs = [self._spec(d) for d in interpreter.get_input_details()]
        self.outputs = [self._spec(d) for d in interpreter.get_output_details()]
        self.options = tfliterun.describe_options(threads)

    @staticmethod
    def _spec(d) -> TensorSpec:
        shape = d.get("shape_signature", d["shape"])
        return TensorSpec(name=d["name"], dtype=_dtype(np.dtype(d["dtype"]).name), shape=_dims(list(shape)))

    def predict(self, x):
        return self.predictor.run(x)


class OnnxRunner(Runner):
    """An ONNX file opened by :mod:`modelyard.onnxrun` on CPU, as serving opens it."""

    def __init__(self, path: Path, threads: int | None = None):
        session = onnxrun.open_session(path, "cpu", serving_threads() if threads is None else threads)
        self.predictor = onnxrun.Predictor(session)
        self.inputs = [
            TensorSpec(name=i.name, dtype=_dtype(i.type), shape=_dims(i.shape)) for i in session.get_inputs()
        ]
        self.outputs = [
            TensorSpec(name=o.name, dtype=_dtype(o.type), shape=_dims(o.shape)) for o in session.get_outputs()
        ]
        self.options = onnxrun.describe_options(session)

    def predict(self, x):
        return np.asarray(self.predictor.run(x), np.float32)
