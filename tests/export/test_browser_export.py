"""``modelyard export --browser`` mechanics, without a browser: the bundle is published inside the manifest's sha256
list, rebuilt in place, and a bad request or a failed build is one clear line that leaves the version as it was."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.manifests import make_manifest
from export import browser_bundle
from export.browser_bundle import BROWSER_DIR, build_browser_bundle
from export.variants import ExportError
from modelyard.manifest import VariantRecord
from modelyard.repository import ModelRepository


@pytest.fixture
def repo(tmp_path, tiny_onnx) -> ModelRepository:
    """boston v1 with an accepted ONNX variant (the tiny model) and a rejected one."""
    repo = ModelRepository(tmp_path / "models")
    with repo.new_version("boston") as stage:
        (stage.dir / "onnx").mkdir()
        shutil.copy(tiny_onnx, stage.dir / "onnx" / "fp32.onnx")
        shutil.copy(tiny_onnx, stage.dir / "onnx" / "int8.onnx")
        manifest = make_manifest("boston")
        manifest.variants = {
            "onnx_fp32": VariantRecord(format="onnx", path="onnx/fp32.onnx", metric="mae", value=2.5, gzip_bytes=900),
            "onnx_int8": VariantRecord(
                format="onnx",
                path="onnx/int8.onnx",
                metric="mae",
                value=9.0,
                gzip_bytes=300,
                status="rejected",
                reason="mae worse by 6.5",
            ),
        }
        stage.manifest = manifest
    return repo


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _export(repo: ModelRepository, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", "export", "boston", "--browser", "--repo", str(repo.root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bundle_takes_the_smallest_accepted_variant_and_is_in_the_manifest(repo):
    bundle = build_browser_bundle(repo, "boston")
    assert bundle.variant == "onnx_fp32"  # int8 is smaller but rejected
    files = repo.manifest("boston").files
    assert {f"{BROWSER_DIR}/{f}" for f in bundle.sizes} == {f for f in files if f.startswith(BROWSER_DIR + "/")}
    assert repo.verify("boston", 1) == []
    assert 0 < bundle.total[1] < bundle.total[0]
    again = build_browser_bundle(repo, "boston", requested="onnx_int8")  # explicitly asked for: allowed, replaced
    assert again.variant == "onnx_int8" and repo.verify("boston", 1) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (("--browser-variant", "tflite_int8"), "is not an ONNX variant of boston v1"),
        (("--edge",), "--browser builds only the browser bundle"),
        (("--version", "7"), "has no version 7"),
    ],
)
def test_bad_requests_are_one_line_and_change_nothing(repo, args, message):
    before = _tree(repo.root)
    run = _export(repo, *args)
    assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr
    assert _tree(repo.root) == before


def test_no_accepted_onnx_variant_is_a_clear_error(repo):
    manifest = repo.manifest("boston")
    with repo.update_version("boston", 1) as stage:
        manifest.variants["onnx_fp32"].status = "rejected"
        stage.manifest = manifest
    run = _export(repo)
    assert run.returncode != 0 and "no accepted ONNX variant" in run.stderr and "modelyard export boston" in run.stderr


def test_missing_runtime_names_the_fix(repo, monkeypatch, tmp_path):
    monkeypatch.setattr(browser_bundle, "ORT_PACKAGE", tmp_path / "nowhere")
    with pytest.raises(ExportError, match="npm ci --prefix export/browser"):
        build_browser_bundle(repo, "boston")
    assert not (repo.path("boston", 1) / BROWSER_DIR).exists()


def test_a_failed_build_leaves_the_version_as_it_was(repo, monkeypatch):
    build_browser_bundle(repo, "boston")
    before = _tree(repo.root / "boston")

    def half_written(version_dir, manifest, variant, ort_version, threshold, out):
        (out / "index.html").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(browser_bundle, "write_bundle", half_written)
    with pytest.raises(OSError, match="disk full"):
        build_browser_bundle(repo, "boston")
    assert _tree(repo.root / "boston") == before
    assert [p.name for p in (repo.root / "boston").iterdir() if p.name.startswith(".staging")] == []


def test_threshold_comes_from_the_serving_config(tmp_path):
    from export.browser_bundle import serving_threshold

    cfg = tmp_path / "serving.yaml"
    cfg.write_text("models:\n  imdb:\n    threshold: 0.7\n")
    assert serving_threshold(cfg, "imdb") == 0.7
    assert serving_threshold(cfg, "reuters") == serving_threshold(None, "imdb") == 0.5
