"""Generated datasets for tests of the training mechanics (never a stand-in for the real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modelyard.datasets import Dataset

TINY_WORDS = 40
"""The vocabulary width of :func:`tiny_text_dataset`'s reviews."""


def tiny_text_dataset(folder: Path) -> Dataset:
    """Generated reviews: ids 4..21 lean positive, 22..39 lean negative; the vocabulary file goes in ``folder``."""
    rng = np.random.default_rng(0)
    vocab = folder / "vocab.json"
    vocab.write_text(json.dumps({f"w{i}": i for i in range(1, 60)}))

    def split(n):
        y = rng.integers(0, 2, n)
        xs = [[1] + rng.choice(np.arange(4, 22) if label else np.arange(22, TINY_WORDS), 8).tolist() for label in y]
        return xs, y.astype(np.int64)

    (x_tr, y_tr), (x_te, y_te) = split(200), split(60)
    return Dataset("imdb", x_tr, y_tr, x_te, y_te, source="generated", vocab_file=vocab)


def tiny_boston_dataset() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 13)).astype(np.float32) * 10 + 50
    y = (x[:, :3].sum(axis=1) / 10).astype(np.float32)
    return Dataset("boston", x[:90], y[:90], x[90:], y[90:], source="generated")
