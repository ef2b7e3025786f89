"""Training curves as in the book: training against validation loss and metric per epoch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: dict, metric: str, path: Path, title: str, kfold: dict | None = None) -> None:
    panels = 3 if kfold else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ("loss", metric)):
        ax.plot(epochs, history[key], "o-", ms=3, label=f"training {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s-", ms=3, label=f"validation {key}")
        else:  # a long final fit: the first epochs would flatten the rest
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    if kfold:
        curve = kfold["mean_val_mae_curve"]
        axes[2].plot(range(1, len(curve) + 1), curve)
        axes[2].axvline(kfold["best_epoch"], ls="--", c="gray", label=f"best epoch {kfold['best_epoch']}")
        axes[2].set_title(f"{kfold['k']}-fold mean validation MAE")
        axes[2].set_xlabel("epoch")
        axes[2].legend()
        axes[2].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
