"""Fixtures shared by every stage's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The genuine Keras dataset files (MODELYARD_DATA_DIR, else ../shared/datasets beside the checkout)."""
    path = Path(os.environ.get("MODELYARD_DATA_DIR") or ROOT.parent / "shared" / "datasets")
    if not (path / "reuters.npz").is_file():
        pytest.skip(f"real Keras datasets not found in {path}; set MODELYARD_DATA_DIR")
    return path


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


def make_manifest(name: str = "boston", version: int = 1):
    """A valid manifest for a tabular model, for tests of the repository and its readers."""
    from modelyard.manifest import DatasetInfo, Manifest, TabularPreprocessing, TensorSpec

    return Manifest(
        name=name, version=version, task="regression", created_at="2026-01-01T00:00:00+00:00",
        inputs=[TensorSpec(name="features", dtype="float32", shape=[None, 2])],
        outputs=[TensorSpec(name="price", dtype="float32", shape=[None, 1])],
        preprocessing=TabularPreprocessing(feature_names=["A", "B"]), metrics={"mae": 2.5},
        dataset=DatasetInfo(name=name, source="generated", train_size=10, test_size=5))
