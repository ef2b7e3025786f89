"""How a model's input is fed to Keras and recorded in its manifest, one class per input kind: the text models
take a multi-hot vector of token ids, Boston takes its raw features (normalized inside the model). A recipe
carries one (:attr:`training.recipes.Recipe.inputs`), so that the trainer has no per-model branches."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelyard.datasets import Dataset
from modelyard.encoding import multi_hot
from modelyard.manifest import FeatureStats, TabularPreprocessing, TensorSpec, TextPreprocessing

VOCAB_FILE = "vocab.json"
OOV_ID = 2
"""keras.datasets' id of a word outside the vocabulary"""
EVAL_BATCH = 1024
"""Rows per batch when evaluating: any size gives the same metrics, a large one is quicker"""


@dataclass(frozen=True)
class MultiHotText:
    """Token-id sequences as 1.0 at every id present (``num_words`` wide), kept as uint8 until a batch is
    built (:class:`tfshared.batches.MultiHotBatches`): the float32 25,000 x 10,000 matrix is never materialised."""

    name: str = "multi_hot"

    def encode(self, sequences, num_words: int) -> np.ndarray:
        return multi_hot(sequences, num_words, dtype=np.uint8)

    def fit_data(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0) -> dict:
        """Keyword arguments of Keras' ``fit`` / ``evaluate`` for these rows."""
        from tfshared.batches import MultiHotBatches

        return {"x": MultiHotBatches(x, y, batch_size, shuffle=shuffle, seed=seed)}

    def validation_data(self, x: np.ndarray, y: np.ndarray):
        """``validation_data`` of Keras' ``fit``."""
        return self.fit_data(x, y, EVAL_BATCH)["x"]

    def spec(self, num_words: int) -> TensorSpec:
        return TensorSpec(
            name=self.name,
            dtype="float32",
            shape=[None, num_words],
            description="1.0 at every token id present in the text",
        )

    def preprocessing(self, ds: Dataset, version_dir: Path, num_words: int) -> TextPreprocessing:
        """The vocabulary file (copied into the version) and the training split's length and OOV rate."""
        shutil.copyfile(ds.vocab_file, version_dir / VOCAB_FILE)
        tokens = sum(len(s) - 1 for s in ds.x_train)
        oov = sum(sum(1 for w in s[1:] if w == OOV_ID) for s in ds.x_train)
        return TextPreprocessing(
            vocab_file=VOCAB_FILE,
            num_words=num_words,
            train_mean_tokens=tokens / len(ds.x_train),
            train_oov_rate=oov / max(tokens, 1),
        )


@dataclass(frozen=True)
class TabularFeatures:
    """Rows of raw float32 features in ``feature_names``' order; the model normalizes them itself."""

    feature_names: list[str]
    name: str = "features"

    def encode(self, x, num_words: int) -> np.ndarray:
        return np.asarray(x, np.float32)

    def fit_data(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0) -> dict:
        """Keyword arguments of Keras' ``fit`` / ``evaluate`` (``fit`` shuffles arrays itself, under Keras' seed)."""
        return {"x": x, "y": y, "batch_size": batch_size}

    def validation_data(self, x: np.ndarray, y: np.ndarray):
        """``validation_data`` of Keras' ``fit``."""
        return x, y

    def spec(self, num_words: int) -> TensorSpec:
        return TensorSpec(
            name=self.name,
            dtype="float32",
            shape=[None, len(self.feature_names)],
            description="raw features in order " + ", ".join(self.feature_names),
        )

    def preprocessing(self, ds: Dataset, version_dir: Path, num_words: int) -> TabularPreprocessing:
        """Each feature's training-split statistics (drift and input checks read them)."""
        x = np.asarray(ds.x_train, np.float32)
        stats = {
            n: FeatureStats(
                mean=float(x[:, i].mean()), std=float(x[:, i].std()), min=float(x[:, i].min()), max=float(x[:, i].max())
            )
            for i, n in enumerate(self.feature_names)
        }
        return TabularPreprocessing(feature_names=self.feature_names, feature_stats=stats)


Inputs = MultiHotText | TabularFeatures
