"""``modelyard train --extra-data``: audited rows join the training split only, and the manifest names them."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from modelyard.errors import ModelyardError
from modelyard.repository import ModelRepository
from tests.training.tiny_data import TINY_WORDS
from audit.sample import COLUMNS
from training.extra import read_extra, with_extra
from training.recipes import FEATURE_NAMES, IMDB_LABELS, RECIPES

HEADER = [*COLUMNS, "label"]


def _csv(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _row(rid, text, label, model="imdb"):
    return [rid, 0, model, 1, "onnx_fp32", "split", "2026-11-30T00:00:00+00:00", text, "positive", "0.9", label]


def test_rows_go_to_the_front_of_the_training_split_only(tiny_text_dataset, tmp_path):
    path = _csv(
        tmp_path / "batch.csv",
        [
            _row("a", "w5 w6 w7", "positive"),
            _row("b", "w30 w31", "0"),
            _row("c", "not annotated", ""),
            _row("d", json.dumps({"ids": [1, 9, 10, 500]}), "negative"),
        ],
    )
    extra = read_extra(path, "imdb", IMDB_LABELS, tiny_text_dataset.vocab_file, TINY_WORDS)
    assert extra.keys == [("a", 0), ("b", 0), ("d", 0)] and extra.y.tolist() == [1, 0, 0]
    assert extra.x[0] == [1, 8, 9, 10]  # start mark, then rank + 3 as Keras' load_data
    assert extra.x[2] == [1, 9, 10, 2]  # ids past the vocabulary become OOV
    assert extra.record["rows"] == 3 and extra.record["audited"] == [["a", 0], ["b", 0], ["d", 0]]
    ds = with_extra(tiny_text_dataset, extra)
    assert len(ds.x_train) == len(tiny_text_dataset.x_train) + 3 and ds.x_train[:3] == extra.x
    assert ds.y_train[:3].tolist() == [1, 0, 0] and ds.y_train.dtype == tiny_text_dataset.y_train.dtype
    assert ds.x_test is tiny_text_dataset.x_test and ds.y_test is tiny_text_dataset.y_test


def test_boston_rows_are_named_features_and_values(tiny_boston_dataset, tmp_path):
    feats = {f: float(i) for i, f in enumerate(FEATURE_NAMES)}
    header = HEADER[:-1] + ["value"]
    path = _csv(tmp_path / "b.csv", [_row("x", json.dumps({"features": feats}), "21.5", "boston")], header)
    extra = read_extra(path, "boston", None, None, 0, FEATURE_NAMES)
    ds = with_extra(tiny_boston_dataset, extra)
    assert ds.x_train[0].tolist() == list(range(13)) and ds.y_train[0] == pytest.approx(21.5)
    assert ds.x_train.dtype == np.float32 and len(ds.x_test) == len(tiny_boston_dataset.x_test)


def test_a_file_with_bad_rows_names_each(tiny_text_dataset, tmp_path):
    path = _csv(
        tmp_path / "bad.csv",
        [_row("a", "w5", "great"), _row("b", "w5", "positive", model="reuters"), _row("c", "w5", "7")],
    )
    with pytest.raises(ModelyardError) as e:
        read_extra(path, "imdb", IMDB_LABELS, tiny_text_dataset.vocab_file, TINY_WORDS)
    msg = str(e.value)
    assert "3 bad row(s)" in msg and "line 2: unknown label 'great'" in msg
    assert "line 3: model 'reuters', not imdb" in msg and "line 4: unknown label '7'" in msg
    with pytest.raises(ModelyardError, match="no row has its label filled in"):
        read_extra(
            _csv(tmp_path / "blank.csv", [_row("a", "w5", "")]),
            "imdb",
            IMDB_LABELS,
            tiny_text_dataset.vocab_file,
            TINY_WORDS,
        )


def test_the_new_version_records_what_it_trained_on(tiny_text_dataset, repo_dir, tmp_path):
    from training.trainer import train

    path = _csv(tmp_path / "batch.csv", [_row(f"r{i}", "w5 w6 w7 w8", "positive") for i in range(5)])
    extra = read_extra(path, "imdb", IMDB_LABELS, tiny_text_dataset.vocab_file, TINY_WORDS)
    m = train(
        RECIPES["imdb"],
        with_extra(tiny_text_dataset, extra),
        ModelRepository(repo_dir),
        tmp_path / "runs",
        epochs=1,
        num_words=TINY_WORDS,
        verbose=0,
        extra_data=extra.record,
    )
    assert m.training["extra_data"]["audited"] == [[f"r{i}", 0] for i in range(5)]
    assert m.training["extra_data"]["file"] == "batch.csv" and len(m.training["extra_data"]["sha256"]) == 64
    assert m.dataset.train_size == len(tiny_text_dataset.y_train) + 5
    assert m.dataset.test_size == len(tiny_text_dataset.y_test)
