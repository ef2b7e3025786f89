"""modelyard export: prune, quantize and convert a trained version into SavedModel, TFLite and ONNX
artifacts, each validated on the full real test set with its own runtime and recorded in the manifest.

TensorFlow is imported only by the modules that need it (through :mod:`tfshared.tfkeras`), and only
when the command runs: ``from export.cli import export`` stays light.
"""
