"""modelyard.tfliterun: the one TFLite loader (serving's runtime and export's validation): its threads
default, batches resized up and down, and integer-I/O files quantized and dequantized with their own
parameters, as export recorded them in the real manifests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from modelyard import onnxrun, tfliterun
from modelyard.datasets import load_boston
from modelyard.repository import ModelRepository

ROOT = Path(__file__).resolve().parents[2]


def test_threads_default_to_the_runtimes_default():
    assert tfliterun.describe_options() == {"threads": onnxrun.intra_op_threads()}
    assert onnxrun.intra_op_threads() == min(onnxrun.MAX_DEFAULT_THREADS, os.cpu_count() or 1)
    assert tfliterun.describe_options(3) == {"threads": 3}


def test_batches_of_any_size_give_the_rows_answers(fixture_root):
    path = fixture_root / "repo" / "boston" / "1" / "tflite" / "fp32.tflite"
    with np.load(fixture_root / "repo" / "boston" / "1" / "reference.npz") as z:
        x = z["x"].astype(np.float32)
    p = tfliterun.Predictor(tfliterun.open_interpreter(path))
    one_by_one = np.concatenate([p.run(x[i : i + 1]) for i in range(len(x))])
    for rows in (len(x), 5, 1, len(x) - 1):  # resized up and down
        np.testing.assert_allclose(p.run(x[:rows]), one_by_one[:rows], rtol=1e-6, atol=1e-6)


@pytest.mark.realdata
def test_every_boston_tflite_variant_scores_as_its_manifest_records(data_dir):
    """Among them int8 I/O (``tflite_int8_io``): its input quantized and output dequantized by the loader."""
    repo = ModelRepository(ROOT / "models")
    if not repo.versions("boston"):
        pytest.skip("no exported boston in ./models (make models)")
    version = repo.resolve("boston", None)
    manifest, vdir = repo.manifest("boston", version), repo.path("boston", version)
    ds = load_boston(data_dir)
    checked = []
    for name, rec in manifest.variants.items():
        if rec.format != "tflite":
            continue
        p = tfliterun.Predictor(tfliterun.open_interpreter(vdir / rec.path))
        y = p.run(ds.x_test)
        assert y.dtype == np.float32 and y.shape == (len(ds.x_test), 1)
        mae = float(np.mean(np.abs(y.reshape(-1) - ds.y_test)))
        assert mae == pytest.approx(rec.value, rel=1e-4), name
        checked.append(name)
    assert "tflite_int8_io" in checked
