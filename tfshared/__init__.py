"""What the TensorFlow stages (training and export) share, so that neither imports the other's internals:
TensorFlow and Keras 2 imported one way (:mod:`tfshared.tfkeras`), native console notices held back
(:mod:`tfshared.native_output`), multi-hot batches built on the fly (:mod:`tfshared.batches`).

Importing this package imports nothing; only :mod:`tfshared.tfkeras` (and what imports it) loads TensorFlow.
The numpy-only core (``modelyard``) and serving never import this package."""
