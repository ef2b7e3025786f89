"""`modelyard bench`: the pieces that decide the figures (best point under the p99 target, ratios, table), and
a short end-to-end run against real server processes with wrk and k6 (TF Serving REST) and the gRPC load
generator (KServe V2 gRPC) (skipped, with the reason, without wrk)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.bench.load import Point, RatePoint
from loadtests.bench.report import markdown, summary
from loadtests.bench.run import Measurement

ROOT = Path(__file__).resolve().parents[2]


def _m(points: list[tuple[int, float, float, int]], rate=(0.5, 2.0), batch=None) -> Measurement:
    return Measurement(
        sweep=[Point(c, rps, 0.1, p99, err, 1000) for c, rps, p99, err in points],
        fixed_rate=RatePoint(100, 100, *rate, 0, 0),
        mean_batch_rows=batch,
    )


def test_best_point_meets_the_target_without_errors():
    m = _m([(1, 100, 1, 0), (8, 900, 20, 0), (32, 1500, 49, 3), (64, 1400, 45, 0), (128, 2000, 80, 0)])
    assert m.best(50).connections == 64  # 1500 req/s had errors, 2000 req/s missed the target
    assert _m([(1, 100, 60, 0)]).best(50) is None


def test_summary_ratios_use_medians_of_rounds():
    results = {
        "modelyard": [_m([(8, 3000, 5, 0)], batch=4), _m([(8, 3300, 5, 0)], batch=6), _m([(8, 2400, 5, 0)], batch=5)],
        "fastapi": [_m([(8, 1000, 5, 0)]), _m([(8, 1100, 5, 0)]), _m([(8, 900, 5, 0)])],
        "http-ceiling": [_m([(8, 6000, 1, 0)]), _m([(8, 6000, 1, 0)]), _m([(8, 6000, 1, 0)])],
    }
    titles = {k: k for k in results}
    roles = {"modelyard": "modelyard", "fastapi": "baseline", "http-ceiling": "ceiling"}
    engine = [{"batch": 1, "rows_per_s": 10000.0}, {"batch": 5, "rows_per_s": 30000.0}]
    rows = {r["server"]: r for r in summary(results, titles, roles, 50, engine)}
    my = rows["modelyard"]
    assert my["rps_at_p99_target"] == {"median": 3000, "min": 2400, "max": 3300, "n": 3}
    assert my["x_baseline"] == 3.0 and my["of_http_ceiling"] == 0.5
    assert my["engine_ceiling"]["batch"] == 5 and my["of_engine_ceiling"] == 0.1
    table = markdown(list(rows.values()), 50, 1000)
    assert "3,000 (2,400–3,300)" in table and "3.00×" in table and "50%" in table


def test_bench_end_to_end(fixture_root, data_dir, tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk); .ci/run installs it")
    out = tmp_path / "bench"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard",
            "bench",
            "--model",
            "boston",
            "--repo",
            str(fixture_root / "repo"),
            "--data-dir",
            str(data_dir),
            "--servers",
            "modelyard,modelyard-grpc,fastapi,http-ceiling",
            "--rounds",
            "1",
            "--connections",
            "1,4",
            "--step-s",
            "1",
            "--rate",
            "100",
            "--rate-s",
            "1",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads((out / "bench.json").read_text())
    rows = {row["server"]: row for row in result["summary"]}
    assert set(rows) == {"modelyard", "modelyard-grpc", "fastapi", "http-ceiling"}
    assert rows["modelyard-grpc"]["protocol"] == "v2-grpc" and rows["modelyard"]["protocol"] == "tfs"
    for row in rows.values():
        assert row["rps_at_p99_target"]["median"] > 0 and not row["failures"], row
        assert row["p99_ms_at_rate"]["median"] > 0
    assert rows["fastapi"]["x_baseline"] == 1.0 and rows["http-ceiling"]["of_http_ceiling"] == 1.0
    assert rows["modelyard"]["of_engine_ceiling"] > 0
    assert result["machine"]["logical_cpus"] >= 1 and result["engine_ceiling"]
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "bench.md").read_text()
    assert "× baseline" in md and "| modelyard (V2 gRPC, dynamic batching) |" in md
    assert set(result["body_bytes"]) == {"tfs", "v2-rest", "v2-grpc"}
