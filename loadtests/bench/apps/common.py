"""What every compared app shares: the model session and the input decoding (numpy and onnxruntime only,
so the peers' own virtual environment needs nothing of modelyard's server)."""

from __future__ import annotations

import os

import numpy as np

from modelyard.encoding import multi_hot
from modelyard.onnxrun import open_session

ONNX = os.environ.get("MODELYARD_BENCH_ONNX", "")
ROUTE = os.environ.get("MODELYARD_BENCH_ROUTE", "/v1/models/model:predict")
WIDTH = int(os.environ.get("MODELYARD_BENCH_WIDTH", "0"))
"""Multi-hot width of a text model; 0 for a model that takes rows of numbers."""
THREADS = int(os.environ.get("MODELYARD_BENCH_THREADS", "1"))


def session():
    """An onnxruntime CPU session opened as modelyard's runtime opens it (:mod:`modelyard.onnxrun`), so the
    engine is identical."""
    sess = open_session(ONNX, "cpu", THREADS)
    return sess, sess.get_inputs()[0].name


def to_input(instances: list) -> np.ndarray:
    """TF Serving row-format instances -> the model's float32 input."""
    if WIDTH:
        return multi_hot([i["ids"] for i in instances], WIDTH)
    return np.asarray(instances, dtype=np.float32)


def v2_to_input(x: np.ndarray) -> np.ndarray:
    """A V2 tensor -> the model's float32 input: token ids ``[N, L]`` (0 = padding, as modelyard reads them) for
    a text model, rows of numbers ``[N, 13]`` for Boston."""
    if WIDTH:
        x = np.asarray(x).reshape(len(x), -1)
        return multi_hot([row[row != 0] for row in x], WIDTH)
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)
