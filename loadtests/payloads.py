"""Request bodies for the load tests, drawn from the real test sets (numpy only, no TensorFlow).

* IMDB: test reviews as raw text (``imdb_raw/test.jsonl.gz``) and as token ids (the same reviews encoded
  with the IMDB word index, Keras' id convention: 1 = start, 2 = OOV, rank + 3).
* Reuters: test newswires (Keras' split) decoded to text through ``reuters_word_index.json``: ids >= 3 are
  word rank ``id - 3``; 0 (padding), 1 (start) and 2 (OOV) are skipped. The ids themselves are also kept.
* Boston: test rows as named features (``BOSTON_FEATURES``).

Every body is serialised once, up front, so the load generator spends its time sending, not encoding.
The servers clip ids past their vocabulary to OOV and encode text themselves, so these payloads fit any
model of the task, whatever its vocabulary size.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("imdb", "reuters", "boston")


def data_dir() -> Path:
    """MODELYARD_LOAD_DATA_DIR, else MODELYARD_DATA_DIR, else ../shared/datasets beside the checkout."""
    d = os.environ.get("MODELYARD_LOAD_DATA_DIR") or os.environ.get("MODELYARD_DATA_DIR")
    return Path(d) if d else ROOT.parent / "shared" / "datasets"


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Samples:
    """Real test-set inputs of one model: texts and ids (text models) or named feature rows (Boston)."""

    model: str
    texts: list[str] = field(default_factory=list)
    ids: list[list[int]] = field(default_factory=list)
    rows: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows) if self.model == "boston" else len(self.texts)


def _max_len() -> int:
    """Longest text/id sequence sent (words); 0 = whole documents. MODELYARD_LOAD_MAX_WORDS, default 0."""
    return int(os.environ.get("MODELYARD_LOAD_MAX_WORDS", "0"))


def _truncate_text(text: str, n: int) -> str:
    return " ".join(text.split()[:n]) if n else text


def imdb_samples(d: Path, n: int) -> Samples:
    from modelyard.datasets import checked_file, read_imdb_raw
    from modelyard.encoding import TextEncoder

    cut = _max_len()
    texts = [_truncate_text(t, cut) for t, _ in islice(read_imdb_raw(d, "test"), n)]
    enc = TextEncoder.from_vocab_file(checked_file(d, "imdb_word_index.json"), num_words=1 << 30)
    return Samples("imdb", texts=texts, ids=[enc.ids(t) for t in texts])


def reuters_samples(d: Path, n: int) -> Samples:
    from modelyard.datasets import load_reuters

    ds = load_reuters(d, num_words=1 << 30)  # no OOV clipping: every id still names its word
    with open(ds.vocab_file, encoding="utf-8") as f:
        by_rank = {rank: word for word, rank in json.load(f).items()}
    cut = _max_len()
    texts, ids = [], []
    for seq in list(ds.x_test)[:n]:
        seq = [int(i) for i in seq]
        words = [by_rank[i - 3] for i in seq if i >= 3 and (i - 3) in by_rank]
        if cut:
            words, seq = words[:cut], seq[: cut + 1]
        texts.append(" ".join(words))
        ids.append(seq)
    return Samples("reuters", texts=texts, ids=ids)


def boston_samples(d: Path, n: int) -> Samples:
    from modelyard.datasets import BOSTON_FEATURES, load_boston

    ds = load_boston(d)
    rows = [{f: float(f"{v:.6g}") for f, v in zip(BOSTON_FEATURES, row.tolist())} for row in ds.x_test[:n]]
    return Samples("boston", rows=rows)


@lru_cache(maxsize=None)
def samples(model: str, n: int | None = None, d: str | None = None) -> Samples:
    """Up to ``n`` (MODELYARD_LOAD_SAMPLES, default 500) real test inputs of ``model``."""
    n = n or int(os.environ.get("MODELYARD_LOAD_SAMPLES", "500"))
    path = Path(d) if d else data_dir()
    loader = {"imdb": imdb_samples, "reuters": reuters_samples, "boston": boston_samples}.get(model)
    if loader is None:
        raise ValueError(f"unknown model '{model}'; expected one of {', '.join(MODELS)}")
    s = loader(path, n)
    if not len(s):
        raise ValueError(f"no {model} test samples found in {path}")
    return s


# ------------------------------------------------------------------ bodies
# Each builder takes a list of instances (``batch`` consecutive samples) and returns JSON bytes.


def _chunks(items: list, batch: int) -> list[list]:
    batch = max(1, batch)
    out = [items[i : i + batch] for i in range(0, len(items) - batch + 1, batch)]
    return out or [items[:batch]]


def tfs_text(s: Samples, batch: int = 1) -> list[bytes]:
    """TF Serving REST row format, raw text: ``{"instances": ["review ...", ...]}``."""
    return [_dumps({"instances": c}) for c in _chunks(s.texts, batch)]


def tfs_ids(s: Samples, batch: int = 1) -> list[bytes]:
    """TF Serving REST row format, token ids: ``{"instances": [{"ids": [1, 14, ...]}, ...]}``."""
    return [_dumps({"instances": [{"ids": i} for i in c]}) for c in _chunks(s.ids, batch)]


def tfs_named(s: Samples, batch: int = 1) -> list[bytes]:
    """TF Serving REST row format, Boston features by name: ``{"instances": [{"CRIM": .., ...}]}``."""
    return [_dumps({"instances": c}) for c in _chunks(s.rows, batch)]


def v2_text(s: Samples, batch: int = 1) -> list[bytes]:
    """KServe V2: one BYTES tensor ``text`` of shape [N]."""
    return [
        _dumps({"inputs": [{"name": "text", "shape": [len(c)], "datatype": "BYTES", "data": c}]})
        for c in _chunks(s.texts, batch)
    ]


def v2_ids(s: Samples, batch: int = 1) -> list[bytes]:
    """KServe V2: one INT64 tensor ``ids`` of shape [N, L], 0 = padding."""
    out = []
    for c in _chunks(s.ids, batch):
        width = max(len(i) for i in c)
        flat = [v for i in c for v in i + [0] * (width - len(i))]
        out.append(_dumps({"inputs": [{"name": "ids", "shape": [len(c), width], "datatype": "INT64", "data": flat}]}))
    return out


def v2_features(s: Samples, batch: int = 1) -> list[bytes]:
    """KServe V2: one FP32 tensor ``features`` of shape [N, 13] (CRIM ... LSTAT)."""
    out = []
    for c in _chunks(s.rows, batch):
        flat = [v for r in c for v in r.values()]
        out.append(
            _dumps({"inputs": [{"name": "features", "shape": [len(c), len(c[0])], "datatype": "FP32", "data": flat}]})
        )
    return out
