"""The genuine Keras dataset files, read from a local folder and split exactly as ``keras.datasets``
splits them (same seed, same shuffles, same id conventions). numpy only, so that serving and the
load tests can read real inputs without TensorFlow. Downloading is the training stage's job."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from modelyard.encoding import TextEncoder
from modelyard.errors import DatasetError
from modelyard.hashing import file_digest

# sha256 of the standard files, as published with keras.datasets (see ../shared/datasets/README.md).
KNOWN_SHA256 = {
    "imdb.npz": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    "imdb_word_index.json": "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6",
    "imdb_raw/train.jsonl.gz": "e55e309d06079745593e06ca25c2b277b708e3428b2ac84414c677226154513d",
    "imdb_raw/test.jsonl.gz": "fa95c381230370e549a41ab5b9805e5548a8d179f9ad3f50a388afd65d0bf58d",
    "reuters.npz": "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
    "reuters_word_index.json": "9b56000edc4b34a32e89fd5a23b2605594682c74efcf7d8f4e2a5514b771e633",
    "boston_housing.npz": "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
}

BOSTON_FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]
SEED = 113


@dataclass
class Dataset:
    """Train and test splits plus where they came from. Text datasets hold id lists in ``x``."""

    name: str
    x_train: object
    y_train: np.ndarray
    x_test: object
    y_test: np.ndarray
    source: str
    files: dict[str, str] = field(default_factory=dict)
    vocab_file: Path | None = None


@lru_cache(maxsize=32)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    return file_digest(path)


def checked_file(data_dir: Path, rel: str) -> Path:
    """``data_dir/rel`` after checking that it exists and has the published sha256."""
    path = Path(data_dir) / rel
    if not path.is_file():
        raise DatasetError(
            f"missing dataset file {path}: put the standard Keras file '{rel}' in {data_dir} "
            f"(or point --data-dir / MODELYARD_DATA_DIR at a folder that has it)"
        )
    st = path.stat()
    actual = _digest(path.resolve(), st.st_mtime_ns, st.st_size)
    if actual != KNOWN_SHA256[rel]:
        raise DatasetError(
            f"corrupt dataset file {path}: sha256 {actual[:12]}... is not the published "
            f"{KNOWN_SHA256[rel][:12]}...; replace it with the standard Keras file"
        )
    return path


def _load_npz(path: Path, keys: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=True) as f:
            return tuple(f[k] for k in keys)
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None


def _keras_ids(sequences, num_words: int, index_from: int = 3, start_char: int = 1, oov_char: int = 2):
    """Keras' ``load_data`` id rule: start mark, ranks shifted by ``index_from``, rare words -> OOV."""
    return [[start_char] + [w + index_from if w + index_from < num_words else oov_char for w in s] for s in sequences]


def _shuffled(rng: np.random.RandomState, *arrays):
    idx = np.arange(len(arrays[0]))
    rng.shuffle(idx)
    return tuple(a[idx] for a in arrays)


def load_boston(data_dir: Path, test_split: float = 0.2, seed: int = SEED) -> Dataset:
    path = checked_file(data_dir, "boston_housing.npz")
    x, y = _load_npz(path, ("x", "y"))
    x, y = _shuffled(np.random.RandomState(seed), x, y)
    n = int(len(x) * (1 - test_split))
    return Dataset(
        "boston",
        x[:n].astype(np.float32),
        y[:n].astype(np.float32),
        x[n:].astype(np.float32),
        y[n:].astype(np.float32),
        source=str(data_dir),
        files={"boston_housing.npz": KNOWN_SHA256["boston_housing.npz"]},
    )


def load_reuters(data_dir: Path, num_words: int = 10000, test_split: float = 0.2, seed: int = SEED) -> Dataset:
    path = checked_file(data_dir, "reuters.npz")
    vocab = checked_file(data_dir, "reuters_word_index.json")
    xs, labels = _load_npz(path, ("x", "y"))
    xs, labels = _shuffled(np.random.RandomState(seed), xs, labels)
    xs = _keras_ids(xs, num_words)
    n = int(len(xs) * (1 - test_split))
    return Dataset(
        "reuters",
        xs[:n],
        labels[:n].astype(np.int64),
        xs[n:],
        labels[n:].astype(np.int64),
        source=str(data_dir),
        vocab_file=vocab,
        files={k: KNOWN_SHA256[k] for k in ("reuters.npz", "reuters_word_index.json")},
    )


def read_imdb_raw(data_dir: Path, split: str) -> Iterator[tuple[str, int]]:
    """(review text, label) pairs from ``imdb_raw/<split>.jsonl.gz``, in file order."""
    path = checked_file(data_dir, f"imdb_raw/{split}.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            yield rec["text"], int(rec["label"])


def load_imdb(data_dir: Path, num_words: int = 10000, seed: int = SEED) -> Dataset:
    """Keras' ``imdb.npz`` when the folder has it, else the same encoding built from the raw reviews."""
    data_dir = Path(data_dir)
    vocab = checked_file(data_dir, "imdb_word_index.json")
    rng = np.random.RandomState(seed)
    if (data_dir / "imdb.npz").exists():
        path = checked_file(data_dir, "imdb.npz")
        x_tr, y_tr, x_te, y_te = _load_npz(path, ("x_train", "y_train", "x_test", "y_test"))
        x_tr, y_tr = _shuffled(rng, x_tr, y_tr)
        x_te, y_te = _shuffled(rng, x_te, y_te)
        x_tr, x_te = _keras_ids(x_tr, num_words), _keras_ids(x_te, num_words)
        files = {k: KNOWN_SHA256[k] for k in ("imdb.npz", "imdb_word_index.json")}
    else:
        encoder = TextEncoder.from_vocab_file(vocab, num_words)
        splits = []
        for split in ("train", "test"):
            pairs = list(read_imdb_raw(data_dir, split))
            ids = np.empty(len(pairs), dtype=object)
            ids[:] = [encoder.ids(text) for text, _ in pairs]
            splits.append(_shuffled(rng, ids, np.array([label for _, label in pairs], dtype=np.int64)))
        (x_tr, y_tr), (x_te, y_te) = splits
        x_tr, x_te = list(x_tr), list(x_te)
        files = {
            k: KNOWN_SHA256[k] for k in ("imdb_raw/train.jsonl.gz", "imdb_raw/test.jsonl.gz", "imdb_word_index.json")
        }
    return Dataset(
        "imdb",
        x_tr,
        y_tr.astype(np.int64),
        x_te,
        y_te.astype(np.int64),
        source=str(data_dir),
        files=files,
        vocab_file=vocab,
    )


LOADERS = {"imdb": load_imdb, "reuters": load_reuters, "boston": load_boston}
