import gzip
import json

import numpy as np
import pytest

from modelyard.encoding import IdRows, MultiHotBatch, TextEncoder, features_to_rows, multi_hot, tokenize
from modelyard.errors import EncodingError
from tests.manifests import TEST_DATA


def _train_review(data_dir, review_id: int, label: int) -> str:
    with gzip.open(data_dir / "imdb_raw" / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["id"] == review_id and rec["label"] == label:
                return rec["text"]
    raise AssertionError("review not found")


def test_encoder_reproduces_keras_ids_for_train_review_576(data_dir):
    expected = json.loads((TEST_DATA / "imdb_x_train_0.json").read_text())["ids"]
    encoder = TextEncoder.from_vocab_file(data_dir / "imdb_word_index.json", num_words=10000)
    assert encoder.ids(_train_review(data_dir, 576, 1)) == expected
    assert len(expected) == 218


def test_tokenize_follows_keras_rules():
    assert tokenize("Hello, World!<br /><br />It's GREAT\tfun") == [
        "hello",
        "world",
        "br",
        "br",
        "it's",
        "great",
        "fun",
    ]
    assert tokenize("  ...  ") == []


def test_word_ids_use_index_from_and_oov():
    enc = TextEncoder(word_index={"the": 1, "movie": 2, "rare": 50}, num_words=10)
    assert enc.ids("The movie RARE unknown") == [1, 4, 5, 2, 2]
    assert enc.oov_rate("the rare unknown movie") == 0.5
    assert enc.clip_ids([1, 9, 10, 99]).tolist() == [1, 9, 2, 2]
    with pytest.raises(EncodingError, match="non-negative"):
        enc.clip_ids([3, -1])


def test_multi_hot_marks_each_id_once_as_float32():
    x = multi_hot([[1, 3, 3], []], num_words=5)
    assert x.dtype == np.float32
    assert x.tolist() == [[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]
    with pytest.raises(EncodingError, match=r"\[0, 5\)"):
        multi_hot([[5]], num_words=5)


def test_encode_text_matches_ids_then_multi_hot():
    enc = TextEncoder(word_index={"good": 1, "bad": 2}, num_words=8)
    assert np.array_equal(enc.encode(["good good bad"]), multi_hot([[1, 4, 5]], 8))


def test_features_by_name_or_list():
    names = ["A", "B"]
    rows = features_to_rows([{"B": 2, "A": 1}, [3, 4]], names)
    assert rows.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(EncodingError, match="missing B; unknown C"):
        features_to_rows([{"A": 1, "C": 2}], names)
    with pytest.raises(EncodingError, match="expected 2 features, got 3"):
        features_to_rows([[1, 2, 3]], names)
    with pytest.raises(EncodingError, match="numbers"):
        features_to_rows([["x", 2]], names)
    with pytest.raises(EncodingError, match="finite"):
        features_to_rows([[float("nan"), 2]], names)


def test_multi_hot_batch_equals_multi_hot_and_clears_what_it_set():
    width = 50
    rng = np.random.default_rng(0)
    batch = MultiHotBatch(capacity=8, width=width)
    for _ in range(3):  # reused: a batch never sees the ones of the one before
        seqs = [rng.integers(0, width, size=int(rng.integers(0, 20))) for _ in range(5)]
        dense = multi_hot(seqs[2:3], width)
        texts_ids, v2_ids = [int(i) for i in seqs[3]], seqs[4].astype(np.int32)  # as texts and V2 INT32 give them
        parts = [IdRows(seqs[:2], width), dense, IdRows([texts_ids, v2_ids], width)]
        got = batch.fill(parts)
        expected = np.concatenate([multi_hot(seqs[:2], width), dense, multi_hot(seqs[3:], width)])
        np.testing.assert_array_equal(got, expected)
        assert got.flags.c_contiguous and got.dtype == np.float32
        batch.clear()
        assert not batch.array.any()


def test_id_rows_dense_is_the_multi_hot_encoding():
    rows = IdRows([np.array([1, 4, 4]), np.array([], np.int64)], 6)
    assert len(rows) == 2
    np.testing.assert_array_equal(rows.dense(), [[0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0]])


def test_ids_past_the_width_are_written_as_the_oov_id_once_per_batch():
    width, oov = 10, 2
    batch = MultiHotBatch(capacity=4, width=width)
    big = np.array([1, 10, 2**64 - 1, 7], np.uint64)  # the largest uint64 must not wrap to a negative position
    rows = IdRows([big, np.array([3], np.uint64)], width, oov)
    got = batch.fill([rows, IdRows([[4, 5]], width)])
    np.testing.assert_array_equal(got, multi_hot([[1, oov, oov, 7], [3], [4, 5]], width))
    np.testing.assert_array_equal(rows.dense(), got[:2])
    assert big.tolist() == [1, 10, 2**64 - 1, 7]  # the request's own ids are left as sent
    batch.clear()
    assert not batch.array.any()
