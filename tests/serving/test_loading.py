"""serving.loading in process: a version is verified, each variant loaded, warmed up and checked before it serves;
what is refused says why; the signature of a version's files sees every change."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from serving_helpers import reference

from modelyard.repository import ModelRepository
from modelyard.settings import Settings
from serving.loading import load_version, signature
from serving.runtimes.base import RuntimeLoadError


@pytest.fixture
def repo(fixture_root, tmp_path) -> ModelRepository:
    shutil.copytree(fixture_root / "repo" / "boston", tmp_path / "boston")
    return ModelRepository(tmp_path)


def _load(repo, variants, named=()):
    return load_version(repo, "boston", 1, variants, Settings(repo=repo.root), 0.5, named)


def test_each_variant_is_loaded_warm_and_answers_as_the_keras_model(repo, fixture_root):
    ref = reference(fixture_root, "boston")
    servables = _load(repo, ["onnx_fp32", "tflite_fp32"])
    try:
        assert [(s.name, s.version, s.variant_name, s.runtime.name) for s in servables] == [
            ("boston", 1, "onnx_fp32", "onnx"),
            ("boston", 1, "tflite_fp32", "tflite"),
        ]
        assert servables[0].codec is servables[1].codec and servables[0].batcher is None  # started by the registry
        for s in servables:
            np.testing.assert_allclose(s.runtime.predict(ref["x"].astype(np.float32)), ref["y"], atol=1e-4)
    finally:
        for s in servables:
            s.runtime.close()


def test_a_corrupt_artifact_is_refused_before_loading(repo):
    p = repo.path("boston", 1) / "onnx" / "fp32.onnx"
    p.write_bytes(p.read_bytes()[:-16] + b"\0" * 16)
    with pytest.raises(RuntimeLoadError, match="sha256 check against manifest failed: .*onnx/fp32.onnx"):
        _load(repo, ["onnx_fp32"])


def test_a_missing_or_rejected_variant_says_what_to_do(repo):
    with pytest.raises(RuntimeLoadError, match="no variant 'onnx_int8' .*export it first: modelyard export boston"):
        _load(repo, ["onnx_int8"])
    path = repo.path("boston", 1) / "manifest.json"
    m = json.loads(path.read_text())
    m["variants"]["tflite_fp32"].update(status="rejected", reason="MAE 9.1 over the 0.5 budget")
    path.write_text(json.dumps(m))
    with pytest.raises(
        RuntimeLoadError,
        match=r"rejected by export validation \(MAE 9.1 over the 0.5 budget\); "
        "serve it anyway with --variant tflite_fp32",
    ):
        _load(repo, ["onnx_fp32", "tflite_fp32"])
    servables = _load(repo, ["tflite_fp32"], named={"tflite_fp32"})  # asked for on purpose: served
    assert [s.variant.status for s in servables] == ["rejected"]
    servables[0].runtime.close()


def test_the_signature_changes_with_any_file(repo):
    vdir = repo.path("boston", 1)
    first = signature(vdir)
    assert first == signature(vdir) and ("onnx/fp32.onnx" in {f[0] for f in first})
    (vdir / "notes.txt").write_text("x")
    added = signature(vdir)
    assert added != first
    st = os.stat(vdir / "notes.txt")
    os.utime(vdir / "notes.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert signature(vdir) != added
