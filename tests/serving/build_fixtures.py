"""Build a tiny model repository that follows the export contract, for the serving tests.

Run as a subprocess (``python tests/serving/build_fixtures.py OUT_DIR``) so that TensorFlow is never
imported in the test process. For each of imdb, reuters and boston it trains a tiny tf_keras model
on generated data (num_words=50) and writes version 1 with ``model.keras``, ``onnx/fp32.onnx``
(tf2onnx), ``tflite/fp32.tflite`` and ``reference.npz`` (the Keras model's own predictions on
fixed inputs, which the tests compare the server's answers to).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modelyard.manifest import (
    DatasetInfo,
    FeatureStats,
    Manifest,
    TabularPreprocessing,  # noqa: E402
    TensorSpec,
    TextPreprocessing,
    VariantRecord,
)
from modelyard.repository import ModelRepository  # noqa: E402

NUM_WORDS = 50
FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]
WORDS = [
    "the",
    "a",
    "movie",
    "film",
    "good",
    "bad",
    "great",
    "awful",
    "plot",
    "acting",
    "love",
    "hate",
    "boring",
    "wonderful",
    "terrible",
    "best",
    "worst",
    "story",
    "wheat",
    "oil",
    "bank",
    "profit",
    "shares",
    "trade",
    "grain",
    "corn",
    "dollar",
    "rate",
    "market",
    "stock",
    "gold",
    "ship",
]
TOPICS = ["earn", "acq", "grain", "crude"]
REF_TEXTS = [
    "this movie was wonderful, great acting and a good story!",
    "awful. boring plot, terrible acting; the worst film",
    "wheat and corn grain trade",
    "zzz unknownword qqq",
]


def _tf():
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(0)
    keras.utils.set_random_seed(0)
    return tf, keras


def _specs(names_dtypes_shapes):
    return [TensorSpec(name=n, dtype=d, shape=s) for n, d, s in names_dtypes_shapes]


def _convert(model, stage_dir: Path, in_width: int) -> dict[str, VariantRecord]:
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    from ai_edge_litert.interpreter import Interpreter

    variants: dict[str, VariantRecord] = {}
    (stage_dir / "onnx").mkdir()
    spec = (tf.TensorSpec((None, in_width), tf.float32, name=model.inputs[0].name.split(":")[0]),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(stage_dir / "onnx" / "fp32.onnx"))
    sess = ort.InferenceSession(str(stage_dir / "onnx" / "fp32.onnx"), providers=["CPUExecutionProvider"])
    ins = [(i.name, "float32", [None, in_width]) for i in sess.get_inputs()]
    outs = [(o.name, "float32", [None, int(o.shape[1])]) for o in sess.get_outputs()]
    variants["onnx_fp32"] = VariantRecord(
        format="onnx", path="onnx/fp32.onnx", metric="m", value=0.0, inputs=_specs(ins), outputs=_specs(outs)
    )
    (stage_dir / "tflite").mkdir()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (stage_dir / "tflite" / "fp32.tflite").write_bytes(conv.convert())
    it = Interpreter(model_path=str(stage_dir / "tflite" / "fp32.tflite"))
    ins = [(d["name"], "float32", [None, in_width]) for d in it.get_input_details()]
    outs = [(d["name"], "float32", [None, int(d["shape"][1])]) for d in it.get_output_details()]
    variants["tflite_fp32"] = VariantRecord(
        format="tflite", path="tflite/fp32.tflite", metric="m", value=0.0, inputs=_specs(ins), outputs=_specs(outs)
    )
    return variants


def _text_model(keras, n_out: int, activation: str):
    inputs = keras.Input((NUM_WORDS,), name="multi_hot")
    x = keras.layers.Dense(8, activation="relu")(inputs)
    out = keras.layers.Dense(n_out, activation=activation)(x)
    return keras.Model(inputs, out)


def build_text(repo: ModelRepository, name: str, version_seed: int = 0) -> int:
    tf, keras = _tf()
    from modelyard.encoding import multi_hot

    rng = np.random.default_rng(version_seed)
    n_out = 1 if name == "imdb" else len(TOPICS)
    model = _text_model(keras, n_out, "sigmoid" if n_out == 1 else "softmax")
    x = multi_hot([rng.integers(1, NUM_WORDS, 12) for _ in range(200)], NUM_WORDS)
    y = rng.integers(0, 2, (200, 1)) if n_out == 1 else keras.utils.to_categorical(rng.integers(0, n_out, 200), n_out)
    model.compile("rmsprop", "binary_crossentropy" if n_out == 1 else "categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    word_index = {w: i + 1 for i, w in enumerate(WORDS)}
    with repo.new_version(name) as st:
        model.save(st.dir / "model.keras")
        (st.dir / "vocab.json").write_text(json.dumps(word_index))
        variants = _convert(model, st.dir, NUM_WORDS)
        variants["keras"] = VariantRecord(format="keras", path="model.keras", metric="m", value=0.0)
        from modelyard.encoding import TextEncoder

        enc = TextEncoder(word_index, NUM_WORDS)
        np.savez(st.dir / "reference.npz", texts=np.array(REF_TEXTS), y=model.predict(enc.encode(REF_TEXTS), verbose=0))
        out_name = "probability" if n_out == 1 else "probabilities"
        st.manifest = Manifest(
            name=name,
            version=st.version,
            created_at=datetime.now(timezone.utc).isoformat(),
            task="binary_classification" if n_out == 1 else "multiclass_classification",
            inputs=_specs([("multi_hot", "float32", [None, NUM_WORDS])]),
            outputs=_specs([(out_name, "float32", [None, n_out])]),
            labels=["negative", "positive"] if n_out == 1 else TOPICS,
            preprocessing=TextPreprocessing(
                vocab_file="vocab.json", num_words=NUM_WORDS, train_mean_tokens=12.0, train_oov_rate=0.1
            ),
            metrics={"accuracy": 0.5},
            dataset=DatasetInfo(name=name, source="generated", train_size=200, test_size=0),
            variants=variants,
        )
        return st.version


def build_boston(repo: ModelRepository, version_seed: int = 0) -> int:
    tf, keras = _tf()
    rng = np.random.default_rng(version_seed)
    x = rng.normal(10, 5, (200, 13)).astype("float32")
    y = x[:, :1] * 0.5 + 20
    norm = keras.layers.Normalization()
    norm.adapt(x)
    inputs = keras.Input((13,), name="features")
    h = keras.layers.Dense(8, activation="relu")(norm(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile("rmsprop", "mse")
    model.fit(x, y, epochs=2, verbose=0)
    stats = {
        f: FeatureStats(
            mean=float(x[:, i].mean()), std=float(x[:, i].std()), min=float(x[:, i].min()), max=float(x[:, i].max())
        )
        for i, f in enumerate(FEATURES)
    }
    with repo.new_version("boston") as st:
        model.save(st.dir / "model.keras")
        variants = _convert(model, st.dir, 13)
        variants["keras"] = VariantRecord(format="keras", path="model.keras", metric="mae", value=0.0)
        ref_x = x[:4]
        np.savez(st.dir / "reference.npz", x=ref_x, y=model.predict(ref_x, verbose=0))
        st.manifest = Manifest(
            name="boston",
            version=st.version,
            created_at=datetime.now(timezone.utc).isoformat(),
            task="regression",
            inputs=_specs([("features", "float32", [None, 13])]),
            outputs=_specs([("price", "float32", [None, 1])]),
            preprocessing=TabularPreprocessing(feature_names=FEATURES, feature_stats=stats),
            metrics={"mae": 1.0},
            dataset=DatasetInfo(name="boston", source="generated", train_size=200, test_size=0),
            variants=variants,
        )
        return st.version


def main(out: str) -> None:
    repo = ModelRepository(out)
    build_text(repo, "imdb")
    build_text(repo, "reuters")
    build_boston(repo)
    # A second imdb version, built aside, that tests copy in for hot-reload (trained with another seed).
    build_text(ModelRepository(Path(out).parent / "spare"), "imdb", version_seed=1)


if __name__ == "__main__":
    main(sys.argv[1])
