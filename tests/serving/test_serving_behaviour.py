"""Serving behaviour with dedicated server processes: API key, full queue, hot reload under load,
a corrupt version refused, traffic split and shadow, graceful shutdown, the TFLite runtime, and no
TensorFlow import."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from serving_helpers import ROOT, reference

TEXT = {"instances": ["a wonderful film with great acting"]}


def publish(src: Path, model_dir: Path, version: int, corrupt: str | None = None) -> None:
    """Publish a version as the export stage does: build beside, then rename into place."""
    stage = model_dir / f".staging-{version}"
    shutil.copytree(src, stage)
    m = json.loads((stage / "manifest.json").read_text())
    m["version"] = version
    (stage / "manifest.json").write_text(json.dumps(m))
    if corrupt:
        p = stage / corrupt
        p.write_bytes(p.read_bytes()[:-16] + b"\0" * 16)
    os.rename(stage, model_dir / str(version))


def test_api_key_on_and_off(repo_copy, start_server, server):
    s = start_server(repo_copy, "--api-key", "s3cret", "--enable-admin")
    r = s.client.post("/v1/models/imdb:predict", json=TEXT)
    assert r.status_code == 401 and "API key" in r.json()["error"]
    assert s.client.post("/v1/models/imdb:predict", json=TEXT, headers={"X-API-Key": "wrong"}).status_code == 401
    assert s.client.post("/v1/models/imdb:predict", json=TEXT, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert (
        s.client.post(
            "/v2/models/imdb/infer",
            headers={"Authorization": "Bearer s3cret"},
            json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]},
        ).status_code
        == 200
    )
    assert s.client.post("/admin/reload").status_code == 401
    assert s.client.post("/admin/reload", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert s.client.get("/v2/health/ready").status_code == 200  # health needs no key
    # and off: the shared server takes requests without a key
    assert server.client.post("/v1/models/imdb:predict", json=TEXT).status_code == 200


def test_full_queue_answers_503_with_retry_after(repo_copy, start_server):
    s = start_server(repo_copy, "--max-queue-size", "2", "--max-queue-delay-ms", "400", "--max-batch-size", "64")
    with ThreadPoolExecutor(8) as pool:
        rs = list(
            pool.map(
                lambda _: httpx.post(f"{s.url}/v1/models/boston:predict", json={"instances": [[1.0] * 13]}, timeout=30),
                range(8),
            )
        )
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) >= 2 and 503 in codes, codes
    full = next(r for r in rs if r.status_code == 503)
    assert full.headers["retry-after"] == "1" and "at capacity" in full.json()["error"]


def _hammer(url: str, stop: threading.Event, results: list, versions: set) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        while not stop.is_set():
            try:
                r = c.post("/v1/models/imdb:predict", json=TEXT)
                results.append(r.status_code)
                if r.status_code == 200:
                    versions.add(int(r.headers["x-model-version"]))
            except httpx.HTTPError as e:
                results.append(repr(e))


def test_hot_reload_under_load_then_corrupt_version_refused(repo_copy, start_server, fixture_root):
    s = start_server(repo_copy)
    stop, results, versions = threading.Event(), [], set()
    threads = [threading.Thread(target=_hammer, args=(s.url, stop, results, versions)) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        publish(fixture_root / "spare" / "imdb" / "1", repo_copy / "imdb", 2)
        deadline = time.time() + 30
        while 2 not in versions and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        # a corrupt version 3: refused, version 2 keeps serving
        publish(fixture_root / "spare" / "imdb" / "1", repo_copy / "imdb", 3, corrupt="onnx/fp32.onnx")
        deadline = time.time() + 30
        while time.time() < deadline:
            st = s.client.get("/v1/models/imdb").json()["model_version_status"]
            if any(v["version"] == "3" and v["state"] == "END" for v in st):
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert results and all(r == 200 for r in results), [r for r in results if r != 200][:5]
    assert versions == {1, 2}
    st = {v["version"]: v for v in s.client.get("/v1/models/imdb").json()["model_version_status"]}
    assert st["2"]["state"] == "AVAILABLE" and "1" not in st
    assert st["3"]["state"] == "END" and "sha256 mismatch" in st["3"]["status"]["error_message"]
    assert s.client.post("/v1/models/imdb:predict", json=TEXT).headers["x-model-version"] == "2"
    r = s.client.post("/v1/models/imdb/versions/3:predict", json=TEXT)
    assert r.status_code == 404 and "failed to load" in r.json()["error"]
    assert 'modelyard_model_load_failures_total{model="imdb",version="3"} 1.0' in s.client.get("/metrics").text
    assert "failed to load" in s.log() and "sha256" in s.log()
    assert s.client.get("/v2/health/ready").status_code == 200


def test_labels_traffic_split_and_shadow(repo_copy, start_server, fixture_root, tmp_path):
    publish(fixture_root / "spare" / "imdb" / "1", repo_copy / "imdb", 2)
    cfg = tmp_path / "serving.yaml"
    cfg.write_text("""
models:
  imdb:
    version_policy: all
    labels: {stable: 1, canary: 2}
    traffic: [{version: 1, weight: 1}, {version: 2, weight: 1}]
  boston:
    traffic: [{variant: onnx_fp32, weight: 1}, {variant: tflite_fp32, weight: 1}]
    shadow: {variant: tflite_fp32}
""")
    s = start_server(repo_copy, "--config", str(cfg))
    assert s.client.post("/v1/models/imdb/labels/stable:predict", json=TEXT).headers["x-model-version"] == "1"
    assert s.client.post("/v1/models/imdb/labels/canary:predict", json=TEXT).headers["x-model-version"] == "2"
    assert s.client.get("/v1/models/imdb/labels/canary").json()["model_version_status"][0]["version"] == "2"
    seen = {s.client.post("/v1/models/imdb:predict", json=TEXT).headers["x-model-version"] for _ in range(40)}
    assert seen == {"1", "2"}
    ref = reference(fixture_root, "boston")
    variants = set()
    for _ in range(40):
        r = s.client.post("/v1/models/boston:predict", json={"instances": ref["x"].tolist()})
        variants.add(r.headers["x-model-variant"])
        np.testing.assert_allclose(r.json()["predictions"], ref["y"], atol=1e-4)
    assert variants == {"onnx_fp32", "tflite_fp32"}
    time.sleep(0.3)
    text = s.client.get("/metrics").text
    assert (
        'modelyard_shadow_comparisons_total{agreed="true",candidate="1/tflite_fp32",model="boston",primary="1/onnx_fp32"}'
        in text
    )
    assert (
        'modelyard_shadow_agreement_ratio{candidate="1/tflite_fp32",model="boston",primary="1/onnx_fp32"} 1.0' in text
    )


def test_tflite_runtime_matches_keras(repo_copy, start_server, fixture_root):
    s = start_server(repo_copy, "--runtime", "tflite")
    ref = reference(fixture_root, "reuters")
    r = s.client.post("/v1/models/reuters:predict", json={"instances": ref["texts"].tolist()})
    assert r.status_code == 200 and r.headers["x-model-variant"] == "tflite_fp32"
    np.testing.assert_allclose(r.json()["predictions"], ref["y"], atol=1e-4)
    assert s.client.get("/v2/models/reuters").json()["platform"] == "tflite"


def test_graceful_shutdown_loses_no_in_flight_request(repo_copy, start_server):
    s = start_server(repo_copy, "--max-queue-delay-ms", "1500")
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(httpx.post, f"{s.url}/v1/models/imdb:predict", json=TEXT, timeout=30) for _ in range(12)]
        deadline = time.time() + 10
        while time.time() < deadline:  # all 12 accepted and waiting in the 1.5 s batch window
            m = s.client.get("/metrics").text
            if "modelyard_requests_in_flight 13.0" in m:
                break
            time.sleep(0.02)
        s.proc.send_signal(signal.SIGTERM)
        codes = [f.result().status_code for f in futures]
    assert codes == [200] * 12
    assert s.proc.wait(30) == 0
    assert "every queued request was answered" in s.log()


def test_serving_never_imports_tensorflow(repo_copy):
    code = f"""
import sys, time
from starlette.testclient import TestClient
from modelyard.settings import Settings
from serving.app import create_app
app = create_app(Settings(repo={str(repo_copy)!r}, poll_interval_s=0))
with TestClient(app) as c:
    for _ in range(100):
        if c.get('/v2/health/ready').status_code == 200: break
        time.sleep(0.05)
    assert c.post('/v1/models/imdb:predict', json={{'instances': ['good']}}).status_code == 200
assert 'tensorflow' not in sys.modules, 'tensorflow was imported'
import modelyard_cli
assert 'tensorflow' not in sys.modules, 'modelyard_cli imported tensorflow'
print('ok')
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
