"""Tiny models trained on generated data (seconds), published to a throw-away repository the way
training publishes real ones, then exported once per session and shared by the tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

NUM_WORDS = 64
POSITIVE = ["wonderful", "great", "superb", "moving", "brilliant", "touching"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "waste", "mess"]
NEUTRAL = [f"word{i}" for i in range(40)]


def _vocab() -> dict[str, int]:
    return {w: i + 1 for i, w in enumerate(POSITIVE + NEGATIVE + NEUTRAL)}


def text_dataset(tmp: Path, n_train: int = 600, n_test: int = 300, seed: int = 0):
    from modelyard.datasets import Dataset

    vocab = _vocab()
    vocab_file = tmp / "tiny_word_index.json"
    vocab_file.write_text(json.dumps(vocab))
    rng = np.random.default_rng(seed)

    def make(n):
        xs, ys = [], []
        for _ in range(n):
            y = int(rng.integers(0, 2))
            words = list(rng.choice(POSITIVE if y else NEGATIVE, 3)) + list(rng.choice(NEUTRAL, 8))
            xs.append([1] + [vocab[w] + 3 for w in words])
            ys.append(y)
        return xs, np.array(ys, dtype=np.int64)

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    return Dataset("imdb", x_tr, y_tr, x_te, y_te, source="generated", vocab_file=vocab_file)


def boston_dataset(n_train: int = 320, n_test: int = 100, seed: int = 0):
    from modelyard.datasets import Dataset

    rng = np.random.default_rng(seed)
    scale = np.array([5, 20, 10, 1, 0.1, 0.7, 30, 2, 8, 150, 2, 90, 7], dtype=np.float32)
    center = np.array([3, 10, 11, 0, 0.55, 6.3, 70, 3.8, 9, 400, 18, 350, 12], dtype=np.float32)
    w = rng.normal(size=13).astype(np.float32)

    def make(n):
        x = (center + scale * rng.normal(size=(n, 13))).astype(np.float32)
        y = (22 + 3 * ((x - center) / scale) @ w / np.sqrt(13)).astype(np.float32)
        return x, y

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    return Dataset("boston", x_tr, y_tr, x_te, y_te, source="generated")


def fast_options(**kw):
    from export.finetune import FineTune
    from export.pipeline import ExportOptions

    base = dict(
        sparsity=0.8,
        verbose=0,
        prune_fine_tune=FineTune(3, 32, 1e-3),
        qat_fine_tune=FineTune(2, 32, 1e-4),
        latency_runs=(3, 3),
        latency_min_seconds=0.0,
    )
    base.update(kw)
    return ExportOptions(**base)


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory):
    """A repository with a tiny IMDB-shaped text model and a tiny Boston-shaped model, version 1 each."""
    from modelyard.repository import ModelRepository
    from training.recipes import RECIPES
    from training.trainer import train

    tmp = tmp_path_factory.mktemp("tiny")
    repo = ModelRepository(tmp / "repo")
    text = text_dataset(tmp)
    boston = boston_dataset()
    train(RECIPES["imdb"], text, repo, tmp / "runs", epochs=8, num_words=NUM_WORDS, verbose=0)
    train(RECIPES["boston"], boston, repo, tmp / "runs", epochs=30, verbose=0)
    return {"root": tmp / "repo", "imdb": text, "boston": boston}


def copy_repo(tiny_trained, dest: Path):
    shutil.copytree(tiny_trained["root"], dest)
    from modelyard.repository import ModelRepository

    return ModelRepository(dest)


@pytest.fixture(scope="session")
def exported(tiny_trained, tmp_path_factory):
    """Every variant of both tiny models, with the edge bundle, in a copy of the tiny repository."""
    from rich.console import Console

    from export.pipeline import run_export

    repo = copy_repo(tiny_trained, tmp_path_factory.mktemp("exported") / "repo")
    console = Console(quiet=True)
    results = {
        name: run_export(repo, name, None, tiny_trained[name], fast_options(edge=True), console)
        for name in ("imdb", "boston")
    }
    return repo, results


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def helpers():
    """Helper functions for the test modules (conftest modules are not importable by name)."""
    import types

    return types.SimpleNamespace(fast_options=fast_options, copy_repo=copy_repo, tree_bytes=tree_bytes)
