"""Test data shared by every stage's tests: the tests' data folder and a valid manifest to edit."""

from __future__ import annotations

from pathlib import Path

TEST_DATA = Path(__file__).parent / "data"


def make_manifest(name: str = "boston", version: int = 1):
    """A valid manifest for a tabular model, for tests of the repository and its readers."""
    from modelyard.manifest import DatasetInfo, Manifest, TabularPreprocessing, TensorSpec

    return Manifest(
        name=name,
        version=version,
        task="regression",
        created_at="2026-01-01T00:00:00+00:00",
        inputs=[TensorSpec(name="features", dtype="float32", shape=[None, 2])],
        outputs=[TensorSpec(name="price", dtype="float32", shape=[None, 1])],
        preprocessing=TabularPreprocessing(feature_names=["A", "B"]),
        metrics={"mae": 2.5},
        dataset=DatasetInfo(name=name, source="generated", train_size=10, test_size=5),
    )
