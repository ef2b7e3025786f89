import shutil

import numpy as np
import pytest

from modelyard.datasets import load_boston, load_imdb, load_reuters
from modelyard.errors import DatasetError


def test_splits_match_keras(data_dir):
    b = load_boston(data_dir)
    assert b.x_train.shape == (404, 13) and b.x_test.shape == (102, 13)
    assert b.y_train[:3].tolist() == pytest.approx([15.2, 42.3, 50.0])  # keras' y_train[:3]
    r = load_reuters(data_dir)
    assert (len(r.x_train), len(r.x_test)) == (8982, 2246)
    assert r.x_train[0][:10] == [1, 2, 2, 8, 43, 10, 447, 5, 25, 207]  # keras' x_train[0] (num_words=10000)
    assert r.y_train[:5].tolist() == [3, 4, 3, 4, 4]
    assert max(max(s) for s in r.x_train) == 9999


def test_imdb_from_raw_texts(data_dir):
    d = load_imdb(data_dir)
    assert (len(d.x_train), len(d.x_test)) == (25000, 25000)
    assert np.bincount(d.y_train).tolist() == [12500, 12500]
    assert all(s[0] == 1 for s in d.x_train[:100])
    assert "imdb_raw/train.jsonl.gz" in d.files


def test_missing_file_names_file_and_place(tmp_path):
    with pytest.raises(DatasetError, match=r"missing dataset file .*boston_housing\.npz.*put the standard Keras file"):
        load_boston(tmp_path)


def test_corrupt_file_is_refused(data_dir, tmp_path):
    shutil.copy(data_dir / "reuters_word_index.json", tmp_path)
    data = bytearray((data_dir / "reuters.npz").read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "reuters.npz").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"corrupt dataset file .*reuters\.npz"):
        load_reuters(tmp_path)
