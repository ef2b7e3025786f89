"""SavedModel through TensorFlow: the only place serving imports TensorFlow, and only when asked for."""

from __future__ import annotations

import os

import numpy as np

from serving.runtimes.base import Runtime, RuntimeLoadError


class SavedModelRuntime(Runtime):
    name = "savedmodel"
    signature = "serving_default"

    def load(self) -> None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if self.requested_device == "cuda" and not gpus:
            raise RuntimeLoadError("--device cuda: TensorFlow sees no GPU here; use --device auto or cpu")
        self.device = "cuda" if gpus and self.requested_device != "cpu" else "cpu"
        self._tf = tf
        try:
            loaded = tf.saved_model.load(str(self.path))
            fn = loaded.signatures[self.signature]
        except Exception as e:  # noqa: BLE001
            raise RuntimeLoadError(f"{self.path}: cannot load SavedModel signature '{self.signature}': {e}") from None
        self._loaded, self._fn = loaded, fn
        _, kwargs = fn.structured_input_signature
        self.input_name = next(iter(kwargs))
        outs = sorted(fn.structured_outputs)
        self.output_name = self.output_name if self.output_name in outs else outs[0]
        self._dev = "/GPU:0" if self.device == "cuda" else "/CPU:0"

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self._tf.device(self._dev):
            out = self._fn(**{self.input_name: self._tf.constant(x)})
        return out[self.output_name].numpy()


RUNTIME = SavedModelRuntime
