"""The one place TensorFlow is imported: Keras 2 (tf_keras) is selected before TensorFlow loads,
because tensorflow-model-optimization and tf2onnx's Keras path do not work with Keras 3. TensorFlow's absl
start-up notices are held back (:mod:`tfshared.native_output`)."""

import os

from tfshared.native_output import native_output_held

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

with native_output_held():
    import tensorflow as tf
    import tf_keras as keras

    tf.config.list_physical_devices()  # initializes the device platforms now: "failed call to cuInit" without a GPU

__all__ = ["tf", "keras"]
