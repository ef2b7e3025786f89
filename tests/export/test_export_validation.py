"""The rejection rule: more than 1 accuracy point lost, or Boston's MAE up more than 5%."""

from __future__ import annotations

import time

import numpy as np

from export.data import ExportData, score
from export.validate import interleaved_latency_ms, validate
from export.variants import judge
from modelyard.tasks import Binary


def test_accuracy_rule():
    assert judge("accuracy", 0.880, 0.885) == ("accepted", "")
    assert judge("accuracy", 0.8751, 0.885)[0] == "accepted"  # 0.99 point
    status, reason = judge("accuracy", 0.870, 0.885)
    assert status == "rejected" and "1.50 points" in reason
    assert judge("accuracy", 0.95, 0.885)[0] == "accepted"


def test_mae_rule():
    assert judge("mae", 2.6, 2.5)[0] == "accepted"  # +4%
    status, reason = judge("mae", 2.7, 2.5)
    assert status == "rejected" and "8.0%" in reason
    assert judge("mae", 2.0, 2.5)[0] == "accepted"
    assert judge("mae", float("nan"), 2.5)[0] == "rejected"


def test_score():
    y = np.array([0, 1, 1, 0])
    assert score("accuracy", np.array([[0.1], [0.9], [0.4], [0.2]]), y) == 0.75
    assert score("accuracy", np.eye(3)[[0, 2, 1]], np.array([0, 2, 2])) == 2 / 3
    assert score("mae", np.array([[1.0], [3.0]]), np.array([2.0, 2.0])) == 1.0


class _Const:
    """A broken artifact: predicts 'positive' for everything."""

    inputs, outputs = [], []

    def predict(self, x):
        return np.ones((len(x), 1), np.float32)


def test_a_bad_variant_is_recorded_as_rejected(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"x" * 100)
    y = np.array([0, 1] * 50)
    data = ExportData(
        "imdb",
        Binary(None, 1),
        np.zeros((10, 4), np.uint8),
        np.zeros(10),
        np.eye(4, dtype=np.uint8)[np.arange(100) % 4],
        y,
        "multi_hot",
        "probability",
    )
    reference = y[:, None].astype(np.float32)  # the float model is perfect
    rec, _ = validate("tflite_int8", "tflite", "m.bin", tmp_path, _Const(), data, reference, 1.0, runs_b1=2, runs_b64=2)
    assert rec.status == "rejected" and "50.00 points" in rec.reason
    assert rec.value == 0.5 and rec.delta == -0.5 and rec.max_abs_diff == 1.0
    assert rec.size_bytes == 100


def test_interleaved_latency_times_every_runner_in_each_round():
    calls = []

    class Sleeper:
        inputs, outputs = [], []

        def __init__(self, name, seconds):
            self.name, self.seconds = name, seconds

        def predict(self, x):
            calls.append(self.name)
            time.sleep(self.seconds)
            return x

    ms = interleaved_latency_ms(
        {"slow": Sleeper("slow", 0.002), "fast": Sleeper("fast", 0)}, np.zeros((1, 1)), rounds=3, calls=2
    )
    assert ms["slow"] >= 2 > ms["fast"]
    assert calls == (["slow"] * 3 + ["fast"] * 3) * 3  # per round: one warm-up and two timed calls each
