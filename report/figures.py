"""The report's PNGs (matplotlib, Agg). Each function draws one figure into ``path``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelyard.manifest import Manifest
from report.numbers import Calibration


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)


def confusion_matrix(cm: np.ndarray, labels: list[str], path: Path, annotate: bool = True) -> None:
    plt = _plt()
    n = len(labels)
    size = 4.5 if n <= 4 else 11
    fig, ax = plt.subplots(figsize=(size + 1, size))
    shown = np.log1p(cm) if not annotate else cm
    im = ax.imshow(shown, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=90 if n > 4 else 0, fontsize=8 if n > 4 else 10)
    ax.set_yticks(range(n), labels, fontsize=8 if n > 4 else 10)
    ax.set_xlabel("the model said")
    ax.set_ylabel("the truth")
    if annotate:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]:,}",
                    ha="center",
                    va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                    fontsize=12,
                )
    else:
        fig.colorbar(im, ax=ax, fraction=0.04, label="log(1 + count)")
    ax.set_title("confusion matrix (test set)")
    _save(fig, path)


def threshold_tradeoff(sweep: dict[str, np.ndarray], threshold: float, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    t = sweep["threshold"]
    ax.plot(t, sweep["precision"], label="precision (flagged that were right)")
    ax.plot(t, sweep["recall"], label="recall (positives caught)")
    ax.plot(t, sweep["fpr"], label="false-positive rate (negatives flagged)")
    ax.axvline(threshold, color="black", linestyle="--", label=f"serving threshold {threshold:g}")
    ax.set_xlabel("decision threshold (probability from which an input is flagged positive)")
    ax.set_ylabel("rate")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("threshold trade-off on the test set")
    _save(fig, path)


def reliability(cal: Calibration, path: Path, xlabel: str, ylabel: str, low: float = 0.0) -> None:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ok = cal.count > 0
    a1.plot([low, 1], [low, 1], color="gray", linestyle=":", label="perfectly calibrated")
    a1.plot(cal.confidence[ok], cal.observed[ok], marker="o", label=f"model (ECE {cal.ece:.3f})")
    a1.set_ylabel(ylabel)
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    a1.set_title("calibration: do the model's probabilities mean what they say?")
    width = (1 - low) / len(cal.count)
    a2.bar(low + width * (np.arange(len(cal.count)) + 0.5), cal.count, width * 0.9, color="tab:gray")
    a2.set_ylabel("inputs")
    a2.set_xlabel(xlabel)
    _save(fig, path)


def per_topic(labels: list[str], precision: np.ndarray, recall: np.ndarray, support: np.ndarray, path: Path) -> None:
    plt = _plt()
    order = np.argsort(-support, kind="stable")
    order = order[support[order] > 0]
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(order) + 1.5))
    y = np.arange(len(order))
    ax.barh(y - 0.2, np.nan_to_num(precision[order]), 0.4, label="precision")
    ax.barh(y + 0.2, np.nan_to_num(recall[order]), 0.4, label="recall")
    ax.set_yticks(y, [f"{labels[i]} ({support[i]})" for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("rate (topics with test newswires, most frequent first; support in brackets)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title("per-topic precision and recall")
    _save(fig, path)


def residuals(y: np.ndarray, pred: np.ndarray, path: Path) -> None:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    a1.scatter(y, pred, s=14, alpha=0.7)
    a1.plot([lo, hi], [lo, hi], color="gray", linestyle=":")
    a1.set_xlabel("true price ($1,000s)")
    a1.set_ylabel("predicted price ($1,000s)")
    a1.set_title("predicted against true price")
    a1.grid(alpha=0.3)
    a2.scatter(pred, pred - y, s=14, alpha=0.7, color="tab:orange")
    a2.axhline(0, color="gray", linestyle=":")
    a2.set_xlabel("predicted price ($1,000s)")
    a2.set_ylabel("error: predicted - true ($1,000s)")
    a2.set_title("residuals")
    a2.grid(alpha=0.3)
    _save(fig, path)


def price_bands(bands: list[dict], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(bands))
    ax.bar(x - 0.2, [b["mae"] for b in bands], 0.4, label="mean absolute error")
    ax.bar(x + 0.2, [b["bias"] for b in bands], 0.4, label="mean error (+: over-priced)")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xticks(x, [f"{b['band']}\n{b['houses']} houses".replace("$", r"\$") for b in bands], fontsize=8)
    ax.set_ylabel("$1,000s")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("error by true price band (test set)")
    _save(fig, path)


def variants(manifest: Manifest, path: Path) -> None:
    """Size against the test metric, each point labelled with its batch-1 latency."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for name, r in manifest.variants.items():
        color = "tab:green" if r.status == "accepted" else "tab:red"
        kib = max(r.gzip_bytes, 1) / 1024  # a size the manifest does not know stays on the log axis
        ax.scatter(kib, r.value, c=color)
        ms = "" if r.latency_ms_b1 is None else f" {r.latency_ms_b1:.3f} ms"
        ax.annotate(f"{name}{ms}", (kib, r.value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("download size, gzip (KiB, log scale)")
    metric = next(iter(manifest.variants.values())).metric if manifest.variants else ""
    ax.set_ylabel(f"test {metric}" + (" (lower is better)" if metric == "mae" else ""))
    ax.set_title("export variants: size, quality and batch-1 latency (red: rejected)")
    ax.grid(alpha=0.3)
    _save(fig, path)
