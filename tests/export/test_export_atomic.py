"""Writes are atomic: a failure mid-export leaves the version byte-for-byte as it was; re-running is
idempotent."""

from __future__ import annotations

import pytest
from rich.console import Console


def test_failure_mid_export_leaves_the_version_untouched(tiny_trained, tmp_path, monkeypatch, helpers):
    import export.report
    from export.pipeline import run_export

    repo = helpers.copy_repo(tiny_trained, tmp_path / "repo")
    vdir = repo.path("boston", 1)
    before = helpers.tree_bytes(vdir)

    def boom(*a, **k):
        raise RuntimeError("disk full while writing the report")

    monkeypatch.setattr(export.report, "write_report", boom)
    opts = helpers.fast_options(formats=["tflite"], quantize=["dynamic"], sparsity=0.0)
    with pytest.raises(RuntimeError, match="disk full"):
        run_export(repo, "boston", 1, tiny_trained["boston"], opts, Console(quiet=True))
    assert helpers.tree_bytes(vdir) == before
    assert [p.name for p in (tmp_path / "repo" / "boston").iterdir() if p.name.startswith(".staging")] == []

    monkeypatch.undo()
    first = run_export(repo, "boston", 1, tiny_trained["boston"], opts, Console(quiet=True))
    assert sorted(first.manifest.variants) == ["keras", "tflite_dynamic", "tflite_fp32"]
    assert repo.verify("boston", 1) == []
    files_after_first = sorted(helpers.tree_bytes(vdir))
    second = run_export(repo, "boston", 1, tiny_trained["boston"], opts, Console(quiet=True))
    assert sorted(helpers.tree_bytes(vdir)) == files_after_first  # same files, no leftovers
    assert sorted(second.manifest.variants) == sorted(first.manifest.variants)
    assert repo.verify("boston", 1) == []
    # conversions are deterministic: the TFLite bytes are identical on re-run
    assert first.manifest.files["tflite/fp32.tflite"] == second.manifest.files["tflite/fp32.tflite"]
