"""The report's figures (PNG): metric per arm with its interval, confusion matrices, calibration, drift."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from modelyard.repository import write_atomic  # noqa: E402

MAX_CONFUSION_PANELS = 4


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return path


def metric_per_arm(r: dict, out: Path) -> Path:
    arms = r["arms"]
    metric = r["metric"]
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(arms)), 3.5))
    vals = [a[metric] for a in arms]
    lo = [a[metric] - a["ci95"][0] for a in arms]
    hi = [a["ci95"][1] - a[metric] for a in arms]
    ax.bar(range(len(arms)), vals, yerr=[lo, hi], capsize=6, color="#4c72b0")
    ax.set_xticks(range(len(arms)), [f"{a['arm']}\nn={a['n']}" for a in arms], fontsize=8)
    ax.set_ylabel(f"{metric} (95% interval)")
    if metric == "accuracy":
        ax.set_ylim(max(0.0, min(a["ci95"][0] for a in arms) - 0.05), 1.0)
    ax.set_title(f"{r['model']}: live {metric} per arm")
    return _save(fig, out / f"{metric}_per_arm.png")


def confusion(r: dict, out: Path) -> Path:
    arms = list(r["confusion"].items())[:MAX_CONFUSION_PANELS]
    fig, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 4), squeeze=False)
    labels = r["labels"]
    for ax, (arm, m) in zip(axes[0], arms):
        m = np.array(m)
        ax.imshow(m, cmap="Blues")
        if len(labels) <= 10:
            ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=8)
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, str(v), ha="center", va="center", color="black" if v < m.max() / 2 else "white")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(arm, fontsize=9)
    return _save(fig, out / "confusion.png")


def calibration(r: dict, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect")
    for arm, c in r["calibration"].items():
        xs = [b["mean_probability"] for b in c["bins"]]
        ys = [b["accuracy"] for b in c["bins"]]
        ax.plot(xs, ys, "o-", label=f"{arm} (ECE {c['expected_calibration_error']:.3f})")
    ax.set_xlabel("probability of the predicted label")
    ax.set_ylabel("share right")
    ax.legend(fontsize=7)
    ax.set_title(f"{r['model']}: calibration")
    return _save(fig, out / "calibration.png")


def drift(r: dict, live_tokens: list[int] | None, out: Path) -> Path | None:
    d = r["drift"]
    if d.get("psi"):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names, vals = list(d["psi"]), list(d["psi"].values())
        ax.bar(names, vals, color=["#c44e52" if v > 0.25 else "#dd8452" if v > 0.1 else "#55a868" for v in vals])
        ax.axhline(0.1, ls=":", color="gray")
        ax.axhline(0.25, ls="--", color="gray")
        ax.set_ylabel("PSI against training")
        ax.tick_params(axis="x", rotation=45)
        ax.set_title(f"{r['model']}: input drift per feature")
        return _save(fig, out / "drift.png")
    if live_tokens:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(live_tokens, bins=40, color="#4c72b0")
        if d["tokens"]["training_mean"]:
            ax.axvline(d["tokens"]["training_mean"], color="#c44e52", label="training mean")
        ax.axvline(d["tokens"]["live_mean"], color="black", ls="--", label="live mean")
        ax.set_xlabel("tokens per text")
        ax.legend()
        ax.set_title(
            f"{r['model']}: review length (OOV live {d['oov_rate']['live_mean']:.3f}, "
            f"training {d['oov_rate']['training'] or float('nan'):.3f})",
            fontsize=9,
        )
        return _save(fig, out / "drift.png")
    return None


def draw_all(r: dict, live_tokens, out: Path) -> list[Path]:
    files = []
    if r["arms"]:
        files.append(metric_per_arm(r, out))
    if r.get("confusion"):
        files.append(confusion(r, out))
    if r.get("calibration"):
        files.append(calibration(r, out))
    d = drift(r, live_tokens, out)
    return files + ([d] if d else [])
