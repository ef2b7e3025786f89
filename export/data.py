"""The real splits as export needs them: the full test set for validation, the training split for
fine-tuning (pruning, QAT) and a representative sample for int8 calibration. Text stays uint8 until a
batch is needed, so the float32 25,000 x 10,000 matrix is never built."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from modelyard.datasets import Dataset
from modelyard.encoding import multi_hot
from modelyard.manifest import Manifest, TextPreprocessing
from modelyard.tasks import Task, manifest_task

REPRESENTATIVE_ROWS = 256


@dataclass
class ExportData:
    name: str
    task: Task
    x_train: np.ndarray  # uint8 multi-hot or float32 features
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_name: str
    output_name: str

    @property
    def metric(self) -> str:
        """What every artifact is validated by: accuracy or mean absolute error."""
        return self.task.metric

    @property
    def is_text(self) -> bool:
        return self.x_test.dtype == np.uint8

    def batches(self, x: np.ndarray, size: int) -> Iterator[np.ndarray]:
        for i in range(0, len(x), size):
            yield x[i : i + size].astype(np.float32)

    def test_batches(self, size: int = 512) -> Iterator[np.ndarray]:
        return self.batches(self.x_test, size)

    def representative(self, rows: int = REPRESENTATIVE_ROWS, seed: int = 0) -> np.ndarray:
        """Training rows (never test rows) for int8 calibration."""
        idx = np.sort(
            np.random.default_rng(seed).choice(len(self.x_train), min(rows, len(self.x_train)), replace=False)
        )
        return self.x_train[idx].astype(np.float32)

    def latency_batch(self, size: int) -> np.ndarray:
        idx = np.arange(size) % len(self.x_test)  # the first test rows, repeated if there are fewer
        return self.x_test[idx].astype(np.float32)


def prepare(ds: Dataset, manifest: Manifest) -> ExportData:
    if isinstance(manifest.preprocessing, TextPreprocessing):
        n = manifest.preprocessing.num_words
        x_tr, x_te = multi_hot(ds.x_train, n, dtype=np.uint8), multi_hot(ds.x_test, n, dtype=np.uint8)
    else:
        x_tr, x_te = np.asarray(ds.x_train, np.float32), np.asarray(ds.x_test, np.float32)
    return ExportData(
        name=manifest.name,
        task=manifest_task(manifest),
        x_train=x_tr,
        y_train=np.asarray(ds.y_train),
        x_test=x_te,
        y_test=np.asarray(ds.y_test),
        input_name=manifest.inputs[0].name,
        output_name=manifest.outputs[0].name,
    )


def score(metric: str, outputs: np.ndarray, y: np.ndarray) -> float:
    """Test metric from model outputs: accuracy (sigmoid or softmax) or mean absolute error."""
    outputs = np.asarray(outputs, np.float32)
    if metric == "mae":
        return float(np.mean(np.abs(outputs.reshape(-1) - y.reshape(-1))))
    if outputs.shape[-1] == 1:
        pred = (outputs.reshape(-1) > 0.5).astype(np.int64)
    else:
        pred = outputs.argmax(axis=-1)
    return float(np.mean(pred == y.reshape(-1).astype(np.int64)))
