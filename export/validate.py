"""Validation of one artifact on the full real test set: metric, change against Keras, maximum
absolute output difference, file and gzip size, median latency at batch 1 and 64, and the verdict.
TFLite and ONNX files are timed as serving runs them (the runner's ``options``, recorded in the details)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np

from export.data import ExportData, score
from export.runtimes import Runner
from export.variants import judge
from modelyard.manifest import VariantRecord

EVAL_BATCH = 500


def predict_all(runner: Runner, data: ExportData, batch: int = EVAL_BATCH) -> np.ndarray:
    return np.concatenate([runner.predict(x) for x in data.test_batches(batch)])


def latency_ms(
    runner: Runner, x: np.ndarray, runs: int, warmup: int = 3, min_seconds: float = 0.25, max_runs: int = 5000
) -> float:
    """Median wall time of one call: at least ``runs`` calls, more (up to ``max_runs``) until ``min_seconds``
    have been measured, so that microsecond-scale models get enough samples to be stable."""
    for _ in range(warmup):
        runner.predict(x)
    times: list[float] = []
    while len(times) < runs or (sum(times) < min_seconds and len(times) < max_runs):
        t = time.perf_counter()
        runner.predict(x)
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 4)


def interleaved_latency_ms(
    runners: dict[str, Runner], x: np.ndarray, rounds: int = 15, calls: int = 100
) -> dict[str, float]:
    """Median per-call latency of each runner, timed in interleaved rounds (the median of each round's median)
    so that a change of load on the machine hits all of them alike: a fair comparison between models that
    take microseconds, where timings taken minutes apart differ more than the models do."""
    medians: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            medians[name].append(latency_ms(runner, x, calls, warmup=1, min_seconds=0))
    return {name: round(float(np.median(m)), 4) for name, m in medians.items()}


def sizes(path: Path) -> tuple[int, int]:
    """Bytes on disk and gzip -9 bytes (summed per file for a directory)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    raw = sum(p.stat().st_size for p in files)
    gz = sum(len(gzip.compress(p.read_bytes(), compresslevel=9, mtime=0)) for p in files)
    return raw, gz


def validate(
    name: str,
    fmt: str,
    rel_path: str,
    version_dir: Path,
    runner: Runner,
    data: ExportData,
    reference: np.ndarray | None,
    reference_value: float | None,
    *,
    sparsity: float = 0.0,
    details: dict | None = None,
    runs_b1: int = 50,
    runs_b64: int = 20,
    min_seconds: float = 0.25,
) -> tuple[VariantRecord, np.ndarray]:
    """Measure ``runner`` (the artifact at ``version_dir/rel_path``); ``reference`` are Keras' outputs."""
    outputs = predict_all(runner, data)
    value = score(data.metric, outputs, data.y_test)
    if reference is None:
        reference, reference_value = outputs, value
    diff = float(np.max(np.abs(outputs.reshape(reference.shape) - reference)))
    delta = value - reference_value
    status, reason = judge(data.metric, value, reference_value)
    raw, gz = sizes(version_dir / rel_path)
    options = getattr(runner, "options", None)
    record = VariantRecord(
        format=fmt,
        path=rel_path,
        metric=data.metric,
        value=value,
        delta=delta,
        max_abs_diff=diff,
        size_bytes=raw,
        gzip_bytes=gz,
        sparsity=round(sparsity, 6),
        latency_ms_b1=latency_ms(runner, data.latency_batch(1), runs_b1, min_seconds=min_seconds),
        latency_ms_b64=latency_ms(runner, data.latency_batch(64), runs_b64, min_seconds=min_seconds),
        status=status,
        reason=reason,
        inputs=runner.inputs,
        outputs=runner.outputs,
        details={
            "test_rows": int(len(data.y_test)),
            **({"runtime_options": options} if options else {}),
            **(details or {}),
        },
    )
    return record, outputs
