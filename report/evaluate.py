"""The real test split through a version's exported ONNX file, with what a person can read of every input:
the IMDB review text (the raw test reviews, encoded with the version's own vocabulary, as the server does),
the decoded Reuters newswire, the 13 Boston features."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelyard.datasets import load_boston, load_reuters, read_imdb_raw
from modelyard.encoding import TextEncoder, multi_hot
from modelyard.errors import ModelyardError
from modelyard.manifest import Manifest
from modelyard.onnxrun import Predictor, open_session

BATCH = 1000
Progress = Callable[[int, int], None]
"""Called with (rows done, rows in all) as the test split is scored."""


@dataclass
class Evaluation:
    manifest: Manifest
    variant: str
    y_true: np.ndarray
    """Label index per row (classifiers) or the true value (regression)."""
    outputs: np.ndarray
    """The model's output rows, [N, width]."""
    shown: list
    """Per row, what a person reads: the review text, the decoded newswire, or the feature values."""
    seconds: float

    @property
    def rows(self) -> int:
        return len(self.y_true)


def onnx_variant(manifest: Manifest, variant: str) -> str:
    """The variant's ONNX path, or a clear error when it is missing or not ONNX."""
    rec = manifest.variants.get(variant)
    onnx = [n for n, r in manifest.variants.items() if r.format == "onnx"]
    if rec is None or rec.format != "onnx":
        why = "is not an ONNX variant" if rec is not None else "is not in the manifest"
        raise ModelyardError(
            f"{manifest.name} v{manifest.version}: variant '{variant}' {why} (ONNX variants: "
            f"{', '.join(onnx) or 'none; run: modelyard export ' + manifest.name})"
        )
    return rec.path


def decoder(encoder: TextEncoder) -> Callable[[list[int]], str]:
    """Keras token ids back to words (the start mark dropped; out-of-vocabulary words as '?')."""
    words = {rank + encoder.index_from: w for w, rank in encoder.word_index.items()}
    return lambda ids: " ".join(words.get(int(i), "?") for i in ids if i != encoder.start_char)


def _test_split(manifest: Manifest, vdir: Path, data_dir: Path) -> tuple[list, np.ndarray, list]:
    """(model inputs per row: id lists or feature rows, truths, what a person reads per row)."""
    if manifest.name == "imdb":
        pairs = list(read_imdb_raw(data_dir, "test"))
        encoder = manifest.text_encoder(vdir)
        texts = [t for t, _ in pairs]
        return [encoder.ids(t) for t in texts], np.array([y for _, y in pairs], np.int64), texts
    if manifest.name == "reuters":
        ds = load_reuters(data_dir, num_words=manifest.preprocessing.num_words)
        decode = decoder(manifest.text_encoder(vdir))
        return list(ds.x_test), ds.y_test, [decode(seq) for seq in ds.x_test]
    if manifest.name == "boston":
        ds = load_boston(data_dir)
        return list(ds.x_test), ds.y_test, [row.tolist() for row in ds.x_test]
    raise ModelyardError(f"no stakeholder report for model '{manifest.name}' (imdb, reuters, boston)")


def evaluate(
    manifest: Manifest, vdir: Path, variant: str, data_dir: Path, threads: int = 1, progress: Progress | None = None
) -> Evaluation:
    path = vdir / onnx_variant(manifest, variant)
    inputs, y, shown = _test_split(manifest, vdir, data_dir)
    predictor = Predictor(open_session(path, "cpu", threads))
    t0 = time.perf_counter()
    text = manifest.preprocessing.kind == "multi_hot_text"
    outs = []
    for i in range(0, len(inputs), BATCH):
        chunk = inputs[i : i + BATCH]
        x = multi_hot(chunk, manifest.preprocessing.num_words) if text else np.asarray(chunk, np.float32)
        outs.append(predictor.run(x))
        if progress:
            progress(min(i + BATCH, len(inputs)), len(inputs))
    return Evaluation(manifest, variant, y, np.concatenate(outs), shown, time.perf_counter() - t0)
