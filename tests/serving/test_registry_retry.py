"""A refused version is tried again when any of its files changes (filled in place, repaired in place), with
exponential backoff while its files keep changing and it keeps failing; failure messages name paths relative to
the repository. Servers poll every 0.3 s (conftest)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from modelyard.hashing import file_digest

TEXT = {"instances": ["a wonderful film with great acting"]}
ONNX = "onnx/fp32.onnx"


def _manifest(src: Path, version: int) -> str:
    m = json.loads((src / "manifest.json").read_text())
    m["version"] = version
    return json.dumps(m)


def _publish_corrupt(src: Path, model_dir: Path, version: int) -> Path:
    """Publish a version by rename, as export does, with its ONNX artifact's last bytes zeroed."""
    stage = model_dir / f".staging-{version}"
    shutil.copytree(src, stage)
    (stage / "manifest.json").write_text(_manifest(src, version))
    p = stage / ONNX
    p.write_bytes(p.read_bytes()[:-16] + b"\0" * 16)
    os.rename(stage, model_dir / str(version))
    return model_dir / str(version)


def _wait_state(s, version: int, state: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = {v["version"]: v for v in s.client.get("/v1/models/imdb").json()["model_version_status"]}
        if st.get(str(version), {}).get("state") == state:
            return st[str(version)]
        assert time.monotonic() < deadline, st
        time.sleep(0.1)


def _failures(s, version: int) -> float:
    m = re.search(
        rf'modelyard_model_load_failures_total{{model="imdb",version="{version}"}} (\S+)', s.client.get("/metrics").text
    )
    return float(m.group(1)) if m else 0.0


def test_version_copied_in_place_file_by_file_is_loaded_once_complete(repo_copy, start_server, fixture_root):
    s = start_server(repo_copy)
    src, dst = fixture_root / "spare" / "imdb" / "1", repo_copy / "imdb" / "2"
    dst.mkdir()
    (dst / "manifest.json").write_text(_manifest(src, 2))
    assert "missing" in _wait_state(s, 2, "END")["status"]["error_message"]
    for f in sorted(p for p in src.rglob("*") if p.is_file() and p.name != "manifest.json"):
        (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst / f.relative_to(src))
        time.sleep(0.2)
    _wait_state(s, 2, "AVAILABLE")
    assert s.client.post("/v1/models/imdb:predict", json=TEXT).headers["x-model-version"] == "2"


def test_corrupt_version_repaired_in_place_is_retried_and_loaded(repo_copy, start_server, fixture_root):
    s = start_server(repo_copy)
    src = fixture_root / "spare" / "imdb" / "1"
    vdir = _publish_corrupt(src, repo_copy / "imdb", 2)
    assert "sha256 mismatch" in _wait_state(s, 2, "END")["status"]["error_message"]
    time.sleep(1)  # unchanged: not tried again
    assert _failures(s, 2) == 1
    manifest_mtime = (vdir / "manifest.json").stat().st_mtime_ns
    (vdir / ONNX).write_bytes((src / ONNX).read_bytes())
    _wait_state(s, 2, "AVAILABLE")
    assert (vdir / "manifest.json").stat().st_mtime_ns == manifest_mtime
    assert _failures(s, 2) == 1
    assert s.client.post("/v1/models/imdb:predict", json=TEXT).headers["x-model-version"] == "2"


def test_failure_messages_name_paths_relative_to_the_repository(repo_copy, start_server, fixture_root):
    s = start_server(repo_copy)
    src, model_dir = fixture_root / "spare" / "imdb" / "1", repo_copy / "imdb"
    # version 2: an ONNX file that matches its manifest sha256 but that onnxruntime cannot load
    stage = model_dir / ".staging-2"
    shutil.copytree(src, stage)
    (stage / ONNX).write_bytes(b"not an onnx model")
    m = json.loads(_manifest(src, 2))
    m["files"][ONNX] = file_digest(stage / ONNX)
    (stage / "manifest.json").write_text(json.dumps(m))
    os.rename(stage, model_dir / "2")
    # version 3: an invalid manifest
    (model_dir / "3").mkdir()
    (model_dir / "3" / "manifest.json").write_text('{"version": 3}')
    messages = [_wait_state(s, v, "END")["status"]["error_message"] for v in (2, 3)]
    messages += [s.client.post(f"/v1/models/imdb/versions/{v}:predict", json=TEXT).json()["error"] for v in (2, 3)]
    assert "imdb/2/onnx/fp32.onnx: onnxruntime cannot load it" in messages[0], messages[0]
    assert messages[1].startswith("imdb/3/manifest.json: invalid manifest"), messages[1]
    for msg in messages:
        assert str(repo_copy) not in msg and str(repo_copy.resolve()) not in msg, msg


def test_version_whose_files_keep_changing_is_not_tried_every_poll(repo_copy, start_server, fixture_root):
    s = start_server(repo_copy)
    vdir = _publish_corrupt(fixture_root / "spare" / "imdb" / "1", repo_copy / "imdb", 2)
    _wait_state(s, 2, "END")
    deadline = time.monotonic() + 3
    with open(vdir / "partial.bin", "ab") as f:  # a copy going on: the signature changes all the time
        while time.monotonic() < deadline:
            f.write(b"x" * 1024)
            f.flush()
            time.sleep(0.05)
    # 10 polls in 3 s; tries after waits of 0.6, 1.2, 2.4 s: the first failure and two or three retries
    assert 2 <= _failures(s, 2) <= 4, _failures(s, 2)


def test_version_unloaded_by_an_admin_stays_unloaded_until_reloaded(repo_copy, start_server):
    s = start_server(repo_copy, "--enable-admin")
    assert s.client.post("/admin/models/imdb/versions/1/unload").status_code == 200
    time.sleep(1)  # polls leave it unloaded
    st = _wait_state(s, 1, "END", timeout=0)
    assert st["status"]["error_message"] == "unloaded by an admin request"
    assert s.client.post("/admin/models/imdb/reload").status_code == 200
    _wait_state(s, 1, "AVAILABLE")
