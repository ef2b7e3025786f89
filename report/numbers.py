"""The report's figures as numbers (numpy only): rates at a threshold, the threshold sweep, calibration bins,
per-class precision and recall, error by price band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BinaryRates:
    """Counts and rates of a binary decision ``p >= threshold`` against truths 0/1."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def at(cls, p: np.ndarray, y: np.ndarray, threshold: float) -> BinaryRates:
        flag, pos = p >= threshold, y == 1
        return cls(
            threshold,
            int(np.sum(flag & pos)),
            int(np.sum(flag & ~pos)),
            int(np.sum(~flag & ~pos)),
            int(np.sum(~flag & pos)),
        )

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def fnr(self) -> float:
        return 1.0 - self.recall

    def per_1000(self, count: int) -> int:
        """``count`` out of every 1,000 test inputs, rounded."""
        return round(1000 * count / self.n)


def threshold_sweep(p: np.ndarray, y: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and false-positive rate at each threshold."""
    rates = [BinaryRates.at(p, y, float(t)) for t in thresholds]
    return {
        "threshold": thresholds,
        "precision": np.array([r.precision for r in rates]),
        "recall": np.array([r.recall for r in rates]),
        "fpr": np.array([r.fpr for r in rates]),
    }


@dataclass(frozen=True)
class Calibration:
    """Inputs grouped by the confidence the model gave them: per bin, the mean confidence, how often the model
    was right (or the input positive) and how many inputs fell in it; ECE weighs the gaps by bin size."""

    confidence: np.ndarray
    observed: np.ndarray
    count: np.ndarray
    ece: float


def calibration(confidence: np.ndarray, hit: np.ndarray, bins: int = 10, low: float = 0.0) -> Calibration:
    edges = np.linspace(low, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, bins) / count
        obs = np.bincount(which, hit.astype(np.float64), bins) / count
    ece = float(np.nansum(np.abs(conf - obs) * count) / max(count.sum(), 1))
    return Calibration(conf, obs, count, ece)


def per_class(y: np.ndarray, pred: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """Precision, recall and support (test inputs of the class) per class; NaN where undefined."""
    cm = confusion(y, pred, classes)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / cm.sum(axis=0)
        recall = tp / cm.sum(axis=1)
    return {"precision": precision, "recall": recall, "support": cm.sum(axis=1)}


def confusion(y: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    return np.bincount(y * classes + pred, minlength=classes * classes).reshape(classes, classes)


PRICE_BANDS = (0, 15, 20, 25, 35, np.inf)
"""Boston prices in $1,000s: the bands the report groups houses into."""


def price_bands(y: np.ndarray, pred: np.ndarray, edges=PRICE_BANDS) -> list[dict]:
    """Per band of true price: how many houses, the mean absolute error and the mean signed error."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (y >= lo) & (y < hi)
        err = pred[sel] - y[sel]
        name = f"${lo:g}k and more" if hi == np.inf else (f"under ${hi:g}k" if lo == 0 else f"${lo:g}k-${hi:g}k")
        out.append(
            {
                "band": name,
                "houses": int(sel.sum()),
                "mae": float(np.mean(np.abs(err))) if sel.any() else float("nan"),
                "bias": float(np.mean(err)) if sel.any() else float("nan"),
            }
        )
    return out
