"""``modelyard report``: a stakeholder report per model version (``<version>/report/index.html`` and its PNGs).

The served ONNX variant is run with onnxruntime on the real test split; the page says in plain words how
often the model is right, what it gets wrong (false positives and negatives per 1,000 inputs at the serving
threshold, real failures with their scores) and what the export variants trade. numpy, onnxruntime and
matplotlib only: no TensorFlow.

- :mod:`report.evaluate`  the test split through the exported ONNX file
- :mod:`report.figures`   the PNGs
- :mod:`report.page`      the HTML page and ``summary.json``
- :mod:`report.publish`   written into the version directory atomically (manifest sha256 kept valid)
- :mod:`report.cli`       the command
"""
