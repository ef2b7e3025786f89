"""The one place TensorFlow is imported: Keras 2 (tf_keras) is selected before TensorFlow loads,
because tensorflow-model-optimization and tf2onnx's Keras path do not work with Keras 3."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
