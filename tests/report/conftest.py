"""A model repository of three small but genuine models fitted in numpy on the real training splits (naive Bayes
for IMDB and Reuters, least squares for Boston) and written as ONNX with the export contract's names, so the
report's tests run on the real test splits in seconds, without TensorFlow and without ``make models``."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from modelyard.datasets import load_boston, load_imdb, load_reuters
from modelyard.encoding import multi_hot
from modelyard.manifest import DatasetInfo, Manifest, TabularPreprocessing, TensorSpec, TextPreprocessing, VariantRecord
from modelyard.repository import ModelRepository

NUM_WORDS = 10000


@dataclass
class Fitted:
    w: np.ndarray
    b: np.ndarray
    activation: str  # Sigmoid, Softmax or Identity

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = x.astype(np.float32) @ self.w + self.b
        if self.activation == "Sigmoid":
            return 1 / (1 + np.exp(-z))
        if self.activation == "Softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return z


def _presence(seqs, classes: np.ndarray, k: int) -> np.ndarray:
    """[word, class] counts of documents containing the word."""
    counts = np.ones((NUM_WORDS, k))
    for seq, c in zip(seqs, classes):
        counts[np.unique(seq), c] += 1
    return counts


def fit_naive_bayes(seqs, y: np.ndarray, k: int) -> Fitted:
    counts = _presence(seqs, y, k)
    logp = np.log(counts / counts.sum(axis=0))
    prior = np.log(np.bincount(y, minlength=k) + 1.0)
    if k == 2:  # one logit: log-count ratio
        return Fitted(
            (logp[:, 1:] - logp[:, :1]).astype(np.float32), np.array([prior[1] - prior[0]], np.float32), "Sigmoid"
        )
    return Fitted(logp.astype(np.float32), prior.astype(np.float32), "Softmax")


def fit_least_squares(x: np.ndarray, y: np.ndarray) -> Fitted:
    a = np.hstack([x, np.ones((len(x), 1), np.float32)])
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    return Fitted(coef[:-1, None].astype(np.float32), coef[-1:].astype(np.float32), "Identity")


def write_onnx(f: Fitted, path: Path, in_name: str, out_name: str) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    width, out = f.w.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [in_name, "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node(f.activation, ["z"], [out_name], **({"axis": 1} if f.activation == "Softmax" else {})),
        ],
        "fitted",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", out])],
        [numpy_helper.from_array(f.w, "W"), numpy_helper.from_array(f.b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def _publish(
    repo: ModelRepository,
    name: str,
    task: str,
    f: Fitted,
    in_name: str,
    out_name: str,
    preprocessing,
    labels,
    metric: str,
    value: float,
    ds,
    vocab: Path | None,
) -> None:
    with repo.new_version(name) as stage:
        write_onnx(f, stage.dir / "onnx" / "fp32.onnx", in_name, out_name)
        if vocab is not None:
            shutil.copy(vocab, stage.dir / "vocab.json")
        raw = (stage.dir / "onnx" / "fp32.onnx").read_bytes()
        width, out = f.w.shape
        stage.manifest = Manifest(
            name=name,
            version=stage.version,
            task=task,
            created_at=datetime.now(timezone.utc).isoformat(),
            inputs=[TensorSpec(name=in_name, dtype="float32", shape=[None, width])],
            outputs=[TensorSpec(name=out_name, dtype="float32", shape=[None, out])],
            labels=labels,
            preprocessing=preprocessing,
            metrics={metric: value},
            dataset=DatasetInfo(
                name=name, source=ds.source, files=ds.files, train_size=len(ds.y_train), test_size=len(ds.y_test)
            ),
            variants={
                "onnx_fp32": VariantRecord(
                    format="onnx",
                    path="onnx/fp32.onnx",
                    metric=metric,
                    value=value,
                    size_bytes=len(raw),
                    gzip_bytes=len(gzip.compress(raw)),
                    latency_ms_b1=0.01,
                )
            },
        )


@dataclass
class RealModels:
    root: Path
    models: dict[str, Fitted]


@pytest.fixture(scope="session")
def real_models(data_dir, tmp_path_factory) -> RealModels:
    root = tmp_path_factory.mktemp("report-repo") / "models"
    repo = ModelRepository(root)
    imdb, reuters, boston = load_imdb(data_dir), load_reuters(data_dir), load_boston(data_dir)
    fitted = {
        "imdb": fit_naive_bayes(imdb.x_train, imdb.y_train, 2),
        "reuters": fit_naive_bayes(reuters.x_train, reuters.y_train, 46),
        "boston": fit_least_squares(boston.x_train, boston.y_train),
    }
    text = {"imdb": (imdb, [str(i) for i in range(2)]), "reuters": (reuters, [f"topic{i}" for i in range(46)])}
    for name, (ds, labels) in text.items():
        task = "binary_classification" if name == "imdb" else "multiclass_classification"
        out = fitted[name](multi_hot(ds.x_test, NUM_WORDS))
        acc = float(np.mean((out[:, 0] >= 0.5 if name == "imdb" else out.argmax(1)) == ds.y_test))
        _publish(
            repo,
            name,
            task,
            fitted[name],
            "multi_hot",
            "probability" if name == "imdb" else "probabilities",
            TextPreprocessing(vocab_file="vocab.json", num_words=NUM_WORDS),
            ["negative", "positive"] if name == "imdb" else labels,
            "accuracy",
            acc,
            ds,
            ds.vocab_file,
        )
    from modelyard.datasets import BOSTON_FEATURES

    mae = float(np.mean(np.abs(fitted["boston"](boston.x_test)[:, 0] - boston.y_test)))
    _publish(
        repo,
        "boston",
        "regression",
        fitted["boston"],
        "features",
        "price",
        TabularPreprocessing(feature_names=BOSTON_FEATURES),
        None,
        "mae",
        mae,
        boston,
        None,
    )
    return RealModels(root, fitted)
