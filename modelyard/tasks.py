"""What a model's output means, per task: binary and multiclass classification, regression.

The one place that turns the raw output tensor into labels, class scores or values, and that says what a task
is scored by, trained with and answered with, so that V2's extra outputs, TF Serving's ``:classify`` /
``:regress``, the prediction metrics, the shadow comparison, export's fine-tunes, the stakeholder reports and
the audits agree. numpy only, like the rest of the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from modelyard.manifest import Manifest

DEFAULT_TOP_K = 3
DEFAULT_THRESHOLD = 0.5


class Task:
    name = ""
    metric = "accuracy"
    """The test metric that export validates, reports show and audits estimate."""
    higher_is_better = True
    loss = ""
    """The Keras loss (by name) a model of this task is fit with."""
    predicts_labels = True
    """A classifier: its ground truth is a label (by name), else a value (``truth_field``)."""
    thresholded = False
    """Whether a decision threshold (the serving config's ``threshold``) turns its output into a label."""
    extra_outputs: tuple[tuple[str, str, str], ...] = ()
    """V2 outputs besides the raw tensor: (name, datatype, description)."""

    def __init__(self, labels: list[str] | None, width: int, threshold: float = DEFAULT_THRESHOLD):
        self.labels = labels or [str(i) for i in range(width)]
        self.width = width
        self.threshold = threshold
        """Binary only: the probability from which a row is labelled positive (the serving config's ``threshold``)."""

    def extras(self, y: np.ndarray, top_k: int | None) -> dict[str, np.ndarray]:
        """The extra outputs for a batch of raw outputs ``y`` [N, width]."""
        return {}

    def predicted_labels(self, y: np.ndarray) -> np.ndarray:
        """Index of the predicted label per row (classification only)."""
        raise NotImplementedError

    def agree(self, y: np.ndarray, y2: np.ndarray) -> np.ndarray:
        """Per row, whether two models' outputs lead to the same decision (shadow mode)."""
        return self.predicted_labels(y) == self.predicted_labels(y2)

    @property
    def truth_field(self) -> str:
        """What a person annotating a prediction fills in (feedback field, audit CSV column)."""
        return "label" if self.predicts_labels else "value"


class Binary(Task):
    name = "binary_classification"
    loss = "binary_crossentropy"
    thresholded = True
    extra_outputs = (
        ("label", "BYTES", "the predicted label"),
        ("label_probability", "FP32", "probability of the predicted label"),
    )

    def __init__(self, labels, width, threshold=DEFAULT_THRESHOLD):
        super().__init__(labels or ["negative", "positive"], width, threshold)

    def predicted_labels(self, y):
        return (y[:, 0] >= self.threshold).astype(np.int64)

    def scores(self, y: np.ndarray) -> np.ndarray:
        """[N, 2]: the probability of each label."""
        p = y[:, 0].astype(np.float32)
        return np.stack([1.0 - p, p], axis=1)

    def extras(self, y, top_k):
        win = self.predicted_labels(y)
        p = y[:, 0]
        return {
            "label": np.array(self.labels, dtype=object)[win],
            "label_probability": np.where(win == 1, p, 1.0 - p).astype(np.float32),
        }


class Multiclass(Task):
    name = "multiclass_classification"
    loss = "sparse_categorical_crossentropy"
    extra_outputs = (
        ("label", "BYTES", "the predicted topic"),
        ("label_probability", "FP32", "probability of the predicted topic"),
        ("top_k_labels", "BYTES", "the k most probable topics, [N, k] (parameter top_k, default 3)"),
        ("top_k_probabilities", "FP32", "their probabilities, [N, k]"),
    )

    def predicted_labels(self, y):
        return np.argmax(y, axis=1)

    def scores(self, y: np.ndarray) -> np.ndarray:
        return y

    def top(self, y: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and probabilities of the ``k`` best labels per row, best first."""
        k = max(1, min(k or DEFAULT_TOP_K, y.shape[1]))
        idx = np.argsort(-y, axis=1, kind="stable")[:, :k]
        return idx, np.take_along_axis(y, idx, axis=1)

    def extras(self, y, top_k):
        idx, probs = self.top(y, top_k)
        names = np.array(self.labels, dtype=object)
        return {
            "label": names[idx[:, 0]],
            "label_probability": probs[:, 0].astype(np.float32),
            "top_k_labels": names[idx],
            "top_k_probabilities": probs.astype(np.float32),
        }


class Regression(Task):
    name = "regression"
    metric = "mae"
    higher_is_better = False
    loss = "mse"
    predicts_labels = False

    def __init__(self, labels, width, threshold=DEFAULT_THRESHOLD):
        super().__init__(None, width)

    def agree(self, y, y2):
        """Within 5% or 0.5 units (Boston: $500) of each other."""
        return np.abs(y[:, 0] - y2[:, 0]) <= np.maximum(0.5, 0.05 * np.abs(y[:, 0]))


TASKS = {t.name: t for t in (Binary, Multiclass, Regression)}


def task_for(name: str, labels: list[str] | None, width: int, threshold: float = DEFAULT_THRESHOLD) -> Task:
    return TASKS[name](labels, width, threshold)


def manifest_task(manifest: Manifest, threshold: float = DEFAULT_THRESHOLD) -> Task:
    """The task of a model version, with its labels and output width."""
    return task_for(manifest.task, manifest.labels, manifest.outputs[0].shape[-1] or 1, threshold)
