"""modelyard core: the contracts every stage shares (numpy only, never TensorFlow).

- :mod:`modelyard.settings`   one typed settings object, read from flags and ``MODELYARD_*`` variables
- :mod:`modelyard.manifest`   the schema of ``manifest.json``
- :mod:`modelyard.repository` the on-disk model repository ``<repo>/<name>/<version>/``
- :mod:`modelyard.encoding`   text -> token ids -> multi-hot, and named features -> rows
- :mod:`modelyard.datasets`   the genuine Keras dataset files, read and split as Keras does
- :mod:`modelyard.onnxrun`    ONNX files on onnxruntime, CPU or CUDA, one way for serving and the benchmarks
- :mod:`modelyard.gpu`        GPU name and memory from NVML, when there is a GPU
"""

__version__ = "0.1.0"
