"""serving.codecs in process: a model version's V2 declaration, every accepted input encoding decoded to the model
input (and refused with a 400 naming the field), and outputs encoded per task. The manifests are written here:
a text model over a six-word vocabulary and a three-feature tabular model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelyard.encoding import IdRows, multi_hot
from modelyard.manifest import DatasetInfo, FeatureStats, Manifest, TabularPreprocessing, TensorSpec, TextPreprocessing
from serving.codecs import ModelCodec
from serving.errors import BadRequest
from serving.tensors import InferRequest, RequestedOutput, Tensor

NUM_WORDS = 8
VOCAB = {"good": 1, "bad": 2, "movie": 3, "plot": 4, "the": 5, "rare": 6}
"""Ranks: a word's id is its rank + 3 (Keras' index_from); ranks 5 and 6 fall past num_words and become OOV (2)."""
FEATURES = ["RM", "AGE", "TAX"]
TOPICS = ["earn", "acq", "grain"]


def _manifest(task: str, labels, width: int, preprocessing, inputs) -> Manifest:
    return Manifest(
        name="m",
        version=1,
        task=task,
        created_at="2026-01-01T00:00:00+00:00",
        inputs=inputs,
        outputs=[TensorSpec(name="y", dtype="float32", shape=[None, width])],
        labels=labels,
        preprocessing=preprocessing,
        metrics={},
        dataset=DatasetInfo(name="m", source="generated", train_size=1, test_size=1),
    )


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("text-version")
    (d / "vocab.json").write_text(json.dumps(VOCAB))
    return d


def text_codec(text_dir, task="binary_classification", labels=None, width=1, threshold=0.5) -> ModelCodec:
    m = _manifest(
        task,
        labels,
        width,
        TextPreprocessing(vocab_file="vocab.json", num_words=NUM_WORDS),
        [TensorSpec(name="multi_hot", dtype="float32", shape=[None, NUM_WORDS])],
    )
    return ModelCodec(m, text_dir, threshold)


@pytest.fixture
def imdb(text_dir) -> ModelCodec:
    return text_codec(text_dir)


@pytest.fixture
def boston(tmp_path) -> ModelCodec:
    stats = {f: FeatureStats(mean=i + 1.0, std=1.0, min=0.0, max=10.0) for i, f in enumerate(FEATURES)}
    m = _manifest(
        "regression",
        None,
        1,
        TabularPreprocessing(feature_names=FEATURES, feature_stats=stats),
        [TensorSpec(name="features", dtype="float32", shape=[None, 3])],
    )
    return ModelCodec(m, tmp_path)


def req(*tensors, outputs=None) -> InferRequest:
    return InferRequest(list(tensors), [RequestedOutput(n) for n in outputs] if outputs else None)


def text(*values) -> Tensor:
    return Tensor("text", "BYTES", [len(values)], np.array(values, dtype=object))


def decode_error(codec, request, max_instances=8) -> str:
    with pytest.raises(BadRequest) as e:
        codec.decode_v2(request, max_instances)
    return str(e.value)


# ------------------------------------------------------------ declaration
def test_text_model_declares_text_and_lists_the_alternatives(imdb):
    inputs, outputs, params = imdb.v2_metadata()
    assert inputs == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [(a["name"], a["datatype"], a["shape"]) for a in params["alternative_inputs"]] == [
        ("ids", "INT64", [-1, -1]),
        ("multi_hot", "FP32", [-1, NUM_WORDS]),
    ]
    assert [o["name"] for o in outputs] == ["y", "label", "label_probability"] == imdb.output_names()


def test_tabular_model_declares_one_row_or_a_tensor_per_feature(boston):
    inputs, outputs, params = boston.v2_metadata()
    assert inputs == [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}]
    assert [a["name"] for a in params["alternative_inputs"]] == FEATURES
    assert outputs == [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}]
    np.testing.assert_array_equal(boston.example(2), [[1, 2, 3], [1, 2, 3]])  # warm-up rows: the training means


# ------------------------------------------------------------ text inputs
def test_texts_as_str_or_utf8_bytes_become_token_ids_with_drift_figures(imdb):
    d = imdb.decode_v2(req(text("Good movie!", "the rare plot".encode())), 8)
    assert isinstance(d.x, IdRows) and len(d.x) == 2
    assert [list(r) for r in d.x.ids] == [[1, 4, 6], [1, 2, 2, 7]]  # start mark, ids; OOV = 2
    assert d.text_tokens == [2, 3] and d.text_oov == [0.0, pytest.approx(2 / 3)]
    np.testing.assert_array_equal(d.x.dense(), multi_hot([[1, 4, 6], [1, 2, 2, 7]], NUM_WORDS))


@pytest.mark.parametrize(
    "value, words",
    [
        (b"\xff\xfe", "inputs[0] 'text'[0]: text is not valid UTF-8"),
        (7, "inputs[0] 'text'[0]: must be a string of text, got int"),
    ],
)
def test_a_text_that_is_not_text_is_400_naming_it(imdb, value, words):
    assert words in decode_error(imdb, req(text(value)))


def test_token_ids_drop_padding_and_clip_past_the_vocabulary(imdb):
    ids = Tensor("ids", "INT64", [2, 3], np.array([[1, 4, 0], [1, 99, 5]], np.int64))
    d = imdb.decode_v2(req(ids), 8)
    assert [list(r) for r in d.x.ids] == [[1, 4], [1, 99, 5]]  # as sent; OOV when the batch is written
    np.testing.assert_array_equal(d.x.dense(), multi_hot([[1, 4], [1, 2, 5]], NUM_WORDS))
    assert "token ids must be non-negative" in decode_error(
        imdb, req(Tensor("ids", "INT64", [1, 2], np.array([[1, -4]], np.int64)))
    )


def test_multi_hot_rows_pass_as_float32(imdb):
    x = np.eye(2, NUM_WORDS, dtype=np.float32)
    d = imdb.decode_v2(req(Tensor("multi_hot", "FP32", [2, NUM_WORDS], x)), 8)
    assert d.x.dtype == np.float32 and d.x.flags.c_contiguous and np.array_equal(d.x, x) and d.texts is None
    bad = x.copy()
    bad[0, 0] = np.inf
    assert "must be finite numbers" in decode_error(imdb, req(Tensor("multi_hot", "FP32", [2, NUM_WORDS], bad)))


# ------------------------------------------------------------ what a V2 request may get wrong
@pytest.mark.parametrize(
    "tensors, words",
    [
        ([], "inputs: empty"),
        (
            [Tensor("txt", "BYTES", [1], np.array(["a"], object))],
            "inputs[0] 'txt': unknown input; this model takes 'text'",
        ),
        ([Tensor("text", "FP32", [1], np.zeros(1, np.float32))], "datatype FP32, but the input is declared BYTES"),
        (
            [Tensor("multi_hot", "FP32", [1, 3], np.zeros((1, 3), np.float32))],
            f"shape [1, 3] does not match the declared shape [-1, {NUM_WORDS}]",
        ),
        ([text("a"), text("b")], "inputs: 2 tensors ('text', 'text'); send exactly one of"),
        ([Tensor("text", "BYTES", [0], np.empty(0, object))], "inputs[0] 'text': empty"),
        ([text(*["a"] * 9)], "inputs[0] 'text': 9 instances, at most 8 per request"),
    ],
)
def test_a_malformed_v2_request_is_400_naming_the_tensor(imdb, tensors, words):
    assert words in decode_error(imdb, req(*tensors))


def test_an_unknown_requested_output_is_400_listing_the_outputs(imdb):
    assert "outputs[0] 'score': unknown output (outputs: y, label, label_probability)" in decode_error(
        imdb, req(text("good"), outputs=["score"])
    )


# ------------------------------------------------------------ tabular inputs
def test_features_as_one_row_tensor_or_one_tensor_each(boston):
    rows = np.array([[6.5, 40.0, 300.0], [5.0, 90.0, 600.0]], np.float32)
    one = boston.decode_v2(req(Tensor("features", "FP32", [2, 3], rows)), 8)
    each = boston.decode_v2(
        req(*(Tensor(f, "FP32", [2], rows[:, i].copy()) for i, f in reversed(list(enumerate(FEATURES))))), 8
    )
    np.testing.assert_array_equal(one.x, rows)
    np.testing.assert_array_equal(each.x, rows)  # in the manifest's feature order, whatever the request's


@pytest.mark.parametrize(
    "names, lengths, words",
    [
        (["RM", "AGE"], [1, 1], "missing TAX"),
        (["RM", "AGE", "TAX", "CRIM"], [1, 1, 1, 1], "inputs[3] 'CRIM': unknown input"),
        (["RM", "AGE", "TAX"], [1, 2, 1], "every feature tensor must have the same length"),
        (["RM", "RM", "AGE", "TAX"], [1, 1, 1, 1], "a tensor name appears twice"),
    ],
)
def test_feature_tensors_that_do_not_fit_are_400(boston, names, lengths, words):
    tensors = [Tensor(n, "FP32", [k], np.ones(k, np.float32)) for n, k in zip(names, lengths)]
    assert words in decode_error(boston, req(*tensors))


# ------------------------------------------------------------ outputs
def test_binary_outputs_follow_the_threshold(text_dir):
    y = np.array([[0.2], [0.65]], np.float32)
    for threshold, labels in ((0.5, ["negative", "positive"]), (0.7, ["negative", "negative"])):
        outs = {t.name: t for t in text_codec(text_dir, threshold=threshold).encode_v2(y, None, None)}
        assert outs["label"].data.tolist() == labels and outs["label"].datatype == "BYTES"
    np.testing.assert_allclose(outs["label_probability"].data, [0.8, 0.35], rtol=1e-6)
    assert outs["y"].shape == [2, 1] and outs["y"].data is y


def test_multiclass_top_k_and_requested_outputs_in_the_order_asked(text_dir):
    codec = text_codec(text_dir, "multiclass_classification", TOPICS, 3)
    y = np.array([[0.1, 0.3, 0.6], [0.7, 0.2, 0.1]], np.float32)
    outs = codec.encode_v2(y, [RequestedOutput("top_k_labels", {"binary_data": True}), RequestedOutput("label")], 2)
    assert [(t.name, t.shape, t.parameters) for t in outs] == [
        ("top_k_labels", [2, 2], {"binary_data": True}),
        ("label", [2], {}),
    ]
    assert outs[0].data.tolist() == [["grain", "acq"], ["earn", "acq"]] and outs[1].data.tolist() == ["grain", "earn"]
