"""Small genuine models for tests that need real exported models without training them: fitted in numpy on the
real training splits (naive Bayes for IMDB and Reuters, least squares for Boston), written as ONNX, with an int8
variant from onnxruntime's static quantization, published into a model repository as export publishes."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from modelyard.datasets import BOSTON_FEATURES, load_boston, load_imdb, load_reuters
from modelyard.encoding import multi_hot
from modelyard.manifest import DatasetInfo, Manifest, TabularPreprocessing, TensorSpec, TextPreprocessing, VariantRecord
from modelyard.repository import ModelRepository

MODELS = ("imdb", "reuters", "boston")
NUM_WORDS = 10000


def _naive_bayes(seqs, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, str]:
    counts = np.ones((NUM_WORDS, k))
    for seq, c in zip(seqs, y):
        counts[np.unique(seq), c] += 1
    logp, prior = np.log(counts / counts.sum(axis=0)), np.log(np.bincount(y, minlength=k) + 1.0)
    if k == 2:  # one logit: the log-count ratio
        return logp[:, 1:] - logp[:, :1], prior[1:] - prior[:1], "Sigmoid"
    return logp, prior, "Softmax"


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    coef = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
    return coef[:-1, None], coef[-1:], "Identity"


def _write_onnx(fitted, path: Path, in_name: str, out_name: str) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b, activation = fitted
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [in_name, "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node(activation, ["z"], [out_name], **({"axis": 1} if activation == "Softmax" else {})),
        ],
        "fitted",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["N", w.shape[0]])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", w.shape[1]])],
        [numpy_helper.from_array(w.astype(np.float32), "W"), numpy_helper.from_array(b.astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def _quantize(fp32: Path, int8: Path, rows: np.ndarray, in_name: str) -> None:
    """onnxruntime's static int8 quantization (QDQ, u8 activations, s8 weights), as export/convert.py does it."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(rows.astype(np.float32), 4))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {in_name: batch}

    quantize_static(
        str(fp32),
        str(int8),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Add"],
    )


def _variant(path: Path, rel: str, metric: str) -> VariantRecord:
    raw = path.read_bytes()
    return VariantRecord(
        format="onnx", path=rel, metric=metric, value=0.0, size_bytes=len(raw), gzip_bytes=len(gzip.compress(raw))
    )


def _publish(
    repo: ModelRepository,
    name: str,
    ds,
    fitted,
    task: str,
    labels,
    preprocessing,
    io: tuple[str, str],
    x_rows: np.ndarray,
    metric: str,
) -> None:
    in_name, out_name = io
    with repo.new_version(name) as stage:
        fp32, int8 = stage.dir / "onnx" / "fp32.onnx", stage.dir / "onnx" / "int8.onnx"
        _write_onnx(fitted, fp32, in_name, out_name)
        _quantize(fp32, int8, x_rows, in_name)
        if ds.vocab_file is not None:
            shutil.copy(ds.vocab_file, stage.dir / "vocab.json")
        width, out = fitted[0].shape
        stage.manifest = Manifest(
            name=name,
            version=stage.version,
            task=task,
            created_at=datetime.now(timezone.utc).isoformat(),
            inputs=[TensorSpec(name=in_name, dtype="float32", shape=[None, width])],
            outputs=[TensorSpec(name=out_name, dtype="float32", shape=[None, out])],
            labels=labels,
            preprocessing=preprocessing,
            metrics={metric: 0.0},
            dataset=DatasetInfo(name=name, source=ds.source, train_size=len(ds.y_train), test_size=len(ds.y_test)),
            variants={
                "onnx_fp32": _variant(fp32, "onnx/fp32.onnx", metric),
                "onnx_int8": _variant(int8, "onnx/int8.onnx", metric),
            },
        )


def fitted_repository(root: Path, data_dir: Path, models: tuple[str, ...] = MODELS) -> ModelRepository:
    repo = ModelRepository(root)
    text = TextPreprocessing(vocab_file="vocab.json", num_words=NUM_WORDS)
    if "imdb" in models:
        imdb = load_imdb(data_dir)
        _publish(
            repo,
            "imdb",
            imdb,
            _naive_bayes(imdb.x_train, imdb.y_train, 2),
            "binary_classification",
            ["negative", "positive"],
            text,
            ("multi_hot", "probability"),
            multi_hot(imdb.x_train[:400], NUM_WORDS),
            "accuracy",
        )
    if "reuters" in models:
        reuters = load_reuters(data_dir)
        _publish(
            repo,
            "reuters",
            reuters,
            _naive_bayes(reuters.x_train, reuters.y_train, 46),
            "multiclass_classification",
            [f"topic{i}" for i in range(46)],
            text,
            ("multi_hot", "probabilities"),
            multi_hot(reuters.x_train[:400], NUM_WORDS),
            "accuracy",
        )
    if "boston" in models:
        boston = load_boston(data_dir)
        _publish(
            repo,
            "boston",
            boston,
            _least_squares(boston.x_train, boston.y_train),
            "regression",
            None,
            TabularPreprocessing(feature_names=BOSTON_FEATURES),
            ("features", "price"),
            boston.x_train,
            "mae",
        )
    return repo
