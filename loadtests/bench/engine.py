"""In-process engine throughput: onnxruntime alone, no HTTP, per batch size, on CPU or CUDA, each model run
exactly as the server runs it (:mod:`modelyard.onnxrun`: same session and provider options, IO binding on CUDA).

Needs only numpy, onnxruntime(-gpu) and the modelyard core's numpy-only readers (datasets, encoding):
the manifest is read as plain JSON, so neither pydantic, FastAPI, TensorFlow nor ``serving`` is imported
and this runs on a GPU machine that has just numpy and onnxruntime-gpu.
"""

from __future__ import annotations

import json
import statistics
import time
from itertools import islice
from pathlib import Path

import numpy as np

from modelyard.datasets import BOSTON_FEATURES, LOADERS, read_imdb_raw
from modelyard.encoding import TextEncoder, multi_hot
from modelyard.onnxrun import CudaOptions, Predictor, intra_op_threads, open_session

BATCH_SIZES = (1, 8, 64, 512, 4096)


def version_dir(repo: Path | str, model: str, version: int | None = None) -> Path:
    """``<repo>/<model>/<version>``, the latest version when none is given."""
    root = Path(repo) / model
    versions = sorted(int(p.name) for p in root.glob("*") if p.name.isdigit() and (p / "manifest.json").is_file())
    if not versions or (version is not None and version not in versions):
        raise FileNotFoundError(f"no model '{model}'{f' version {version}' if version else ''} in {repo}")
    return root / str(version or versions[-1])


def _manifest(vdir: Path) -> dict:
    return json.loads((vdir / "manifest.json").read_text())


def onnx_file(repo: Path | str, model: str, variant: str = "onnx_fp32", version: int | None = None) -> Path:
    vdir = version_dir(repo, model, version)
    rec = _manifest(vdir).get("variants", {}).get(variant)
    if rec is None or rec.get("format") != "onnx":
        raise FileNotFoundError(f"{vdir}: no ONNX variant '{variant}'; export it first: modelyard export {model}")
    return vdir / rec["path"]


def real_test_rows(
    repo: Path | str, model: str, data_dir: Path | str, n: int = 1000, version: int | None = None
) -> np.ndarray:
    """Up to ``n`` real test-set inputs of ``model``, encoded as its input (float32 ``[n, width]``): the
    version's own vocabulary and ``num_words`` for text, the manifest's feature order for Boston. IMDB
    reviews are the first ``n`` of ``imdb_raw/test.jsonl.gz`` when the folder has it (reading the
    whole split to shuffle it as Keras does would tokenize 50,000 reviews); else Keras' test split."""
    vdir = version_dir(repo, model, version)
    m = _manifest(vdir)
    pre, name, data_dir = m["preprocessing"], m["dataset"]["name"], Path(data_dir)
    if pre["kind"] == "tabular":
        cols = [BOSTON_FEATURES.index(f) for f in pre["feature_names"]]
        return np.ascontiguousarray(LOADERS[name](data_dir).x_test[:n][:, cols], dtype=np.float32)
    num_words = pre["num_words"]
    if name == "imdb" and (data_dir / "imdb_raw" / "test.jsonl.gz").is_file():
        enc = TextEncoder.from_vocab_file(
            vdir / pre["vocab_file"],
            num_words,
            index_from=pre["index_from"],
            start_char=pre["start_char"],
            oov_char=pre["oov_char"],
        )
        ids = [enc.ids(text) for text, _ in islice(read_imdb_raw(data_dir, "test"), n)]
    else:
        ids = list(LOADERS[name](data_dir, num_words=num_words).x_test)[:n]
    return multi_hot(ids, num_words)


def _batches(x: np.ndarray, rows: int) -> list[np.ndarray]:
    """Batches of ``rows`` rows cycled from ``x``: up to 8 distinct ones, so calls do not all send one input."""
    count = max(1, min(len(x) // rows, 8))
    return [np.ascontiguousarray(x[(i * rows + np.arange(rows)) % len(x)]) for i in range(count)]


def engine_throughput(
    onnx_path: Path | str,
    x: np.ndarray,
    batch_sizes=BATCH_SIZES,
    device: str = "cpu",
    threads: int = 0,
    seconds: float = 1.0,
    repeats: int = 3,
    cuda: CudaOptions | None = None,
    io_binding: bool | None = None,
) -> list[dict]:
    """Rows per second and per-call latency of one model, per batch size, rows cycled from ``x``.

    Each batch size is run three times untimed (warm-up, CUDA graph capture), then ``repeats`` timed
    runs of ``seconds`` each: ``rows_per_s`` is their median, ``spread`` their [min, max]; ``p50_ms`` and
    ``p99_ms`` are over every timed call. ``device="cuda"`` raises :class:`modelyard.onnxrun.CudaUnavailable`
    when onnxruntime would fall back to CPU. ``io_binding=False`` measures CUDA without it (the server
    binds); ``cuda`` defaults to the server's options, with graphs sized up to the largest batch; ``threads``
    (0: the server's default) are the CPU session's intra-op threads.
    """
    cuda = cuda or CudaOptions(graph_max_rows=max(batch_sizes))
    p = Predictor(open_session(onnx_path, device, threads, cuda), cuda, io_binding)
    out = []
    for rows in batch_sizes:
        batches = _batches(x, rows)
        for i in range(3):
            p.run(batches[i % len(batches)])
        rates, calls = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            deadline, n = start + seconds, 0
            while True:
                t0 = time.perf_counter()
                p.run(batches[n % len(batches)])
                t1 = time.perf_counter()
                calls.append(t1 - t0)
                n += 1
                if t1 >= deadline:
                    break
            rates.append(n * rows / (t1 - start))
        ms = np.array(calls) * 1000
        out.append(
            {
                "device": device,
                "provider": p.provider,
                "batch": rows,
                "threads": intra_op_threads(threads),
                "io_binding": p.io_binding,
                "cuda_graph": p.cuda_graph,
                "rows_per_s": statistics.median(rates),
                "spread": [min(rates), max(rates)],
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "calls": len(calls),
            }
        )
    return out


def cuda_matches_cpu(
    onnx_path: Path | str, x: np.ndarray, atol: float = 1e-4, cuda: CudaOptions | None = None, chunk: int = 256
) -> dict:
    """The model's outputs on CUDA (as the server runs it, in chunks of ``chunk`` rows) against CPU on
    the same rows: max absolute difference, whether it is within ``atol``, and the provider used."""
    cuda = cuda or CudaOptions()
    ref = Predictor(open_session(onnx_path, "cpu")).run(x)
    gpu = Predictor(open_session(onnx_path, "cuda", 1, cuda), cuda)
    got = np.concatenate([gpu.run(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if len(x) else 0.0
    return {"rows": len(x), "max_abs_diff": diff, "atol": atol, "ok": diff <= atol, "provider": gpu.provider}
