"""The schema of ``manifest.json``: what a model version is, how its inputs are encoded, how well
each of its variants did, and the sha256 of every file in the version directory."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.encoding import KERAS_FILTERS, TextEncoder
from modelyard.errors import RepositoryError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"

_TEXT_ENCODERS: weakref.WeakValueDictionary[tuple, TextEncoder] = weakref.WeakValueDictionary()
"""Text encoders in use, by their vocabulary file's sha256 (from the manifest) and settings: versions of a model
share one vocabulary (the dataset's word index), so a hot reload reuses the encoder the serving version holds
instead of parsing another 90,000-entry JSON object; that churn of small objects is what fragmented the server's
heap and raised its RSS with every reload."""

Task = Literal["binary_classification", "multiclass_classification", "regression"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TensorSpec(_Strict):
    name: str
    dtype: Literal["float32", "int64", "int32", "int8", "uint8", "string"]
    shape: list[int | None]
    description: str = ""


class FeatureStats(_Strict):
    mean: float
    std: float
    min: float
    max: float


class TextPreprocessing(_Strict):
    kind: Literal["multi_hot_text"] = "multi_hot_text"
    vocab_file: str
    num_words: int = Field(gt=3)
    index_from: int = 3
    start_char: int = 1
    oov_char: int = 2
    lowercase: bool = True
    filters: str = KERAS_FILTERS
    split: str = " "
    train_mean_tokens: float | None = None
    train_oov_rate: float | None = None
    """Training-set statistics that serving compares live inputs against (drift)."""


class TabularPreprocessing(_Strict):
    kind: Literal["tabular"] = "tabular"
    feature_names: list[str]
    feature_stats: dict[str, FeatureStats] = {}
    normalization: Literal["in_model"] = "in_model"


Preprocessing = Annotated[TextPreprocessing | TabularPreprocessing, Field(discriminator="kind")]


class VariantRecord(_Strict):
    """One deployable artifact of a version and what validation measured on the full test set."""

    format: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """The artifact's format (keras, savedmodel, tflite, onnx, or another runtime's): serving loads it with the
    runtime registered under that name (serving/runtimes/__init__.py)."""
    path: str
    metric: str
    value: float
    delta: float = 0.0
    """Change of ``value`` against the float Keras model (same sign convention as the metric)."""
    max_abs_diff: float = 0.0
    size_bytes: int = 0
    gzip_bytes: int = 0
    sparsity: float = 0.0
    latency_ms_b1: float | None = None
    latency_ms_b64: float | None = None
    status: Literal["accepted", "rejected"] = "accepted"
    reason: str = ""
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    details: dict = {}


class DatasetInfo(_Strict):
    name: str
    source: str
    files: dict[str, str] = {}
    """sha256 of each dataset file the model was trained from."""
    train_size: int
    test_size: int


class Manifest(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    version: int = Field(ge=1)
    task: Task
    created_at: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str] | None = None
    preprocessing: Preprocessing
    metrics: dict[str, float]
    kfold: dict | None = None
    dataset: DatasetInfo
    training: dict = {}
    variants: dict[str, VariantRecord] = {}
    files: dict[str, str] = {}

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise RepositoryError(f"{path}: no manifest.json") from None
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(map(str, first["loc"])) or "(root)"
            raise RepositoryError(f"{path}: invalid manifest at {where}: {first['msg']}") from None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def text_encoder(self, version_dir: Path) -> TextEncoder:
        p = self.preprocessing
        if not isinstance(p, TextPreprocessing):
            raise RepositoryError(f"{self.name} takes features, not text")
        key = (self.files.get(p.vocab_file), p.num_words, p.index_from, p.start_char, p.oov_char)
        encoder = _TEXT_ENCODERS.get(key) if key[0] else None
        if encoder is None:
            encoder = TextEncoder.from_vocab_file(
                version_dir / p.vocab_file,
                p.num_words,
                index_from=p.index_from,
                start_char=p.start_char,
                oov_char=p.oov_char,
            )
            if key[0]:
                _TEXT_ENCODERS[key] = encoder
        return encoder
