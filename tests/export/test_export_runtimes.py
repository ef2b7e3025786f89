"""export's TFLite and ONNX runners open files through the loaders serving uses (modelyard.onnxrun,
modelyard.tfliterun), with the same options from the same settings field (``MODELYARD_THREADS``), so the
latency export writes into a manifest is the latency the server's runtime measures: checked on the real
exported models, export's own timing code against serving's batcher, interleaved."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import numpy as np
import pytest

from export.runtimes import OnnxRunner, TFLiteRunner
from export.validate import latency_ms
from modelyard import onnxrun
from modelyard.repository import ModelRepository
from modelyard.settings import Settings
from serving.batching import Batcher, BatchPolicy
from serving.runtimes.onnx import OnnxRuntime
from serving.runtimes.tflite import TFLiteRuntime

ROOT = Path(__file__).resolve().parents[2]
LATENCY_MODELS = ("boston", "imdb")
ROUNDS, CALLS = 60, 50
"""Rounds of the latency comparison, and calls per round and side."""
RUNTIMES = {"onnx_fp32": (OnnxRunner, OnnxRuntime), "tflite_fp32": (TFLiteRunner, TFLiteRuntime)}


def served(repo: Path, model: str, variant: str):
    """Export's runner and serving's runtime (loaded as the registry loads it: ``settings.threads``) of one
    variant of the latest version of ``model``."""
    repository = ModelRepository(repo)
    version = repository.resolve(model, None)
    rec = repository.manifest(model, version).variants[variant]
    path = repository.path(model, version) / rec.path
    runner_class, runtime_class = RUNTIMES[variant]
    runtime = runtime_class(path, rec, "cpu", Settings().threads)
    runtime.load()
    return runner_class(path), runtime


@pytest.mark.parametrize("threads", [None, "1", "3"], ids=["default", "one-thread", "three-threads"])
def test_export_and_serving_open_onnx_with_the_same_session_options(fixture_root, monkeypatch, threads):
    if threads is None:
        monkeypatch.delenv("MODELYARD_THREADS", raising=False)
    else:
        monkeypatch.setenv("MODELYARD_THREADS", threads)
    runner, runtime = served(fixture_root / "repo", "boston", "onnx_fp32")
    want = int(threads or 0) or onnxrun.intra_op_threads()
    assert (
        runner.options
        == onnxrun.describe_options(runtime.session)
        == {"provider": onnxrun.CPU, "intra_op_threads": want, "inter_op_threads": 1, "spinning": False}
    )


@pytest.mark.parametrize("variant", list(RUNTIMES))
def test_export_and_serving_give_the_same_answers_with_the_same_threads(fixture_root, variant):
    runner, runtime = served(fixture_root / "repo", "boston", variant)
    with np.load(fixture_root / "repo" / "boston" / "1" / "reference.npz") as z:
        x = z["x"].astype(np.float32)
    for rows in (1, 7, len(x), 3):  # resized up and down, as batches of any size arrive
        np.testing.assert_array_equal(runner.predict(x[:rows]), runtime.predict(x[:rows]))
    if variant.startswith("tflite"):
        assert runner.options == {"threads": runtime.threads}


async def interleaved_ms(runner, runtime, x: np.ndarray, rounds: int = ROUNDS) -> tuple[float, float]:
    """Median per-call latency of export's runner timed by export's own code (:func:`export.validate.latency_ms`,
    as it fills ``latency_ms_b1`` / ``latency_ms_b64``) and of serving's runtime as serving's batcher times it
    (the inference seconds it reports to its observer, the batch metrics; one request per batch), in
    alternating rounds of :data:`CALLS` calls: the medians of the rounds' medians."""
    seconds: list[float] = []
    batcher = Batcher(
        runtime.predict,
        BatchPolicy.from_settings(Settings()),
        name="latency",
        observer=lambda rows, waits, elapsed: seconds.append(elapsed),
    )
    batcher.start()
    for _ in range(20):  # warm, and past the first batches that the batcher runs in its thread
        await batcher.submit(x)
    export_ms, serving_ms = [], []
    for _ in range(rounds):
        export_ms.append(latency_ms(runner, x, CALLS, warmup=1, min_seconds=0))
        seconds.clear()
        for _ in range(CALLS):
            await batcher.submit(x)
        serving_ms.append(statistics.median(seconds) * 1000)
    await batcher.close()
    return statistics.median(export_ms), statistics.median(serving_ms)


@pytest.fixture(scope="module")
def exported(data_dir, tmp_path_factory) -> Path:
    """The checkout's real exported models (never modified) when it has them; else (a clean clone) small genuine
    models fitted in numpy on the real training splits and written as ONNX (``tests/fitted_models.py``)."""
    real = ROOT / "models"
    if all(any((real / m).glob("*/onnx/fp32.onnx")) for m in LATENCY_MODELS):
        return real
    from fitted_models import fitted_repository

    root = tmp_path_factory.mktemp("latency") / "models"
    fitted_repository(root, data_dir, models=LATENCY_MODELS)
    return root


@pytest.mark.realdata
@pytest.mark.parametrize("model", LATENCY_MODELS)
def test_manifest_latency_is_the_latency_serving_measures(model, exported, data_dir):
    """The onnx_fp32 file of an exported version, at batch 1 and 64 on its first real test rows (as
    ``ExportData.latency_batch`` takes them): export's figure within 20% of serving's, timed interleaved so
    that the shared machine's load hits both alike."""
    from loadtests.bench.engine import real_test_rows

    runner, runtime = served(exported, model, "onnx_fp32")
    x64 = real_test_rows(exported, model, data_dir, 64)
    for rows in (1, 64):
        export_ms, serving_ms = asyncio.run(interleaved_ms(runner, runtime, x64[:rows]))
        ratio = export_ms / serving_ms
        print(f"{model} batch {rows}: export {export_ms:.4f} ms, serving {serving_ms:.4f} ms, ratio {ratio:.3f}")
        assert 0.8 <= ratio <= 1.2, (model, rows, export_ms, serving_ms)
