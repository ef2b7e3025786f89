"""The task object every stage reads: what an output means, what a task is scored by, trained with and answered
with."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.manifest import TensorSpec
from modelyard.tasks import TASKS, Binary, Multiclass, Regression, manifest_task
from tests.manifests import make_manifest

Y_BINARY = np.array([[0.2], [0.7], [0.5]], np.float32)
Y_TOPICS = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], np.float32)


def test_classifiers_decide_labels_and_the_binary_one_by_its_threshold():
    assert Binary(None, 1).predicted_labels(Y_BINARY).tolist() == [0, 1, 1]
    assert Binary(None, 1, threshold=0.6).predicted_labels(Y_BINARY).tolist() == [0, 1, 0]
    np.testing.assert_allclose(Binary(None, 1).scores(Y_BINARY)[0], [0.8, 0.2])
    topics = Multiclass(["a", "b", "c"], 3)
    assert topics.predicted_labels(Y_TOPICS).tolist() == [1, 0]
    idx, probs = topics.top(Y_TOPICS, 2)
    assert idx.tolist() == [[1, 2], [0, 2]] and probs[0].tolist() == pytest.approx([0.6, 0.3])
    assert topics.extras(Y_TOPICS, 1)["label"].tolist() == ["b", "a"]


def test_regression_agrees_within_five_percent_or_half_a_unit():
    y = np.array([[20.0], [3.0]], np.float32)
    assert Regression(None, 1).agree(y, np.array([[20.9], [3.6]], np.float32)).tolist() == [True, False]


@pytest.mark.parametrize(
    "task, metric, higher, loss, field",
    [
        (Binary, "accuracy", True, "binary_crossentropy", "label"),
        (Multiclass, "accuracy", True, "sparse_categorical_crossentropy", "label"),
        (Regression, "mae", False, "mse", "value"),
    ],
)
def test_each_task_says_its_metric_loss_and_answer(task, metric, higher, loss, field):
    t = task(["x", "y"], 2)
    assert (t.metric, t.higher_is_better, t.loss, t.truth_field) == (metric, higher, loss, field)
    assert TASKS[t.name] is task and t.thresholded == (task is Binary)


def test_a_manifest_gives_its_task_with_labels_width_and_threshold():
    boston = make_manifest()
    assert isinstance(manifest_task(boston), Regression) and manifest_task(boston).width == 1
    topics = boston.model_copy(
        update={
            "task": "multiclass_classification",
            "labels": ["a", "b", "c"],
            "outputs": [TensorSpec(name="probabilities", dtype="float32", shape=[None, 3])],
        }
    )
    t = manifest_task(topics)
    assert isinstance(t, Multiclass) and t.labels == ["a", "b", "c"] and t.width == 3
    reviews = boston.model_copy(update={"task": "binary_classification"})
    t = manifest_task(reviews, threshold=0.8)
    assert isinstance(t, Binary) and t.labels == ["negative", "positive"] and t.threshold == 0.8
