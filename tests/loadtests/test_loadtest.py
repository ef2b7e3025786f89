"""`modelyard loadtest` end to end (a few seconds of headless Locust against a real server process on
127.0.0.1), plus the pieces that need no load: host checks, durations, SLOs, payloads, user selection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.hosts import HostError, check_loopback
from loadtests.runner import Row, check_slos, parse_duration

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


def test_headless_load_against_a_real_server(fixture_root, data_dir, tmp_path):
    repo = tmp_path / "models"
    shutil.copytree(fixture_root / "repo", repo)
    report = tmp_path / "report"
    env = {
        "MODELYARD_LOAD_DATA_DIR": str(data_dir),
        "MODELYARD_LOAD_SAMPLES": "40",
        "MODELYARD_POLL_INTERVAL_S": "0",
        "MODELYARD_ACCESS_LOG": "false",
        "COLUMNS": "120",
    }
    p = _modelyard(
        "loadtest",
        "--start-server",
        "--repo",
        str(repo),
        "--users",
        "6",
        "--spawn-rate",
        "6",
        "--duration",
        "5s",
        "--report",
        str(report),
        "--slo-p99-ms",
        "5000",
        env=env,
        timeout=240,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Aggregated" in p.stdout and "SLOs met" in p.stdout

    for name in (
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_failures.csv",
        "report.html",
        "latency_throughput.png",
        "summary.json",
    ):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    assert (report / "latency_throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    summary = json.loads((report / "summary.json").read_text())
    assert summary["ok"] and summary["total"]["failures"] == 0 and summary["total"]["requests"] > 20
    names = {r["name"] for r in summary["rows"]}
    # every model and protocol got traffic (6 users, one per user class)
    for prefix in ("tfs imdb", "v2 imdb", "tfs reuters", "v2 reuters", "tfs boston", "v2 boston"):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    assert summary["host"].startswith("http://127.0.0.1:")
    # the server was stopped (SIGTERM) and drained cleanly
    assert "Traceback" not in (report / "server.log").read_text(errors="replace")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.9.9.9", "http://localhost:1", "http://[::1]:8000", "127.0.0.1:8000"]
)
def test_loopback_hosts_are_accepted(url):
    assert check_loopback(url) == url


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1:8000", "http://example.com", "http://0.0.0.0:8000", "http://192.168.1.2", "ftp://127.0.0.1", ""],
)
def test_other_hosts_are_refused(url):
    with pytest.raises(HostError):
        check_loopback(url)


def test_cli_refuses_a_remote_host_before_sending_anything(tmp_path):
    p = _modelyard("loadtest", "--host", "http://93.184.216.34", "--duration", "1s", "--report", str(tmp_path))
    assert p.returncode == 2
    assert "only loopback hosts" in p.stderr
    assert not list(tmp_path.iterdir())
    p = _modelyard("loadtest", "--duration", "1s", "--report", str(tmp_path / "r"))
    assert p.returncode == 2 and "--host URL or --start-server" in p.stderr


def test_durations():
    assert parse_duration("30s") == 30 and parse_duration("2m") == 120 and parse_duration("1h30m") == 5400
    assert parse_duration("45") == 45
    with pytest.raises(RuntimeError):
        parse_duration("soon")


def test_slos():
    ok = Row("Aggregated", 1000, 0, 500.0, 5, 10, 20, 50, 6)
    assert check_slos(ok, 50, 0.0) == []
    assert "p99 latency 20 ms is above --slo-p99-ms 10" in check_slos(ok, 10, 0.0)[0]
    bad = Row("Aggregated", 1000, 3, 500.0, 5, 10, 20, 50, 6)
    assert "error rate 0.30%" in check_slos(bad, None, 0.0)[0]
    assert check_slos(bad, None, 0.01) == []
    assert check_slos(Row("Aggregated", 0, 0, 0.0, None, None, None, None, None), 10, 0) == ["no requests completed"]


def test_payloads_come_from_the_real_test_sets(data_dir):
    from loadtests import payloads

    imdb = payloads.samples("imdb", 5, str(data_dir))
    assert len(imdb) == 5 and all(len(t) > 50 for t in imdb.texts)
    assert all(i[0] == 1 for i in imdb.ids)
    reuters = payloads.samples("reuters", 5, str(data_dir))
    vocab = json.loads((data_dir / "reuters_word_index.json").read_text())
    for text, ids in zip(reuters.texts, reuters.ids):
        words = text.split()
        assert words and all(w in vocab for w in words)
        assert len(words) == sum(1 for i in ids if i >= 3)
    boston = payloads.samples("boston", 5, str(data_dir))
    assert list(boston.rows[0]) == [
        "CRIM",
        "ZN",
        "INDUS",
        "CHAS",
        "NOX",
        "RM",
        "AGE",
        "DIS",
        "RAD",
        "TAX",
        "PTRATIO",
        "B",
        "LSTAT",
    ]
    body = json.loads(payloads.v2_text(imdb, 2)[0])
    assert body["inputs"][0]["datatype"] == "BYTES" and body["inputs"][0]["shape"] == [2]
    body = json.loads(payloads.tfs_ids(reuters, 1)[0])
    assert body == {"instances": [{"ids": reuters.ids[0]}]}


def test_model_selection_and_weights():
    code = (
        "import loadtests.locustfile as l; "
        "print(sorted((c.__name__, c.weight) for c in (l.ImdbTFS, l.ImdbV2, l.ReutersTFS, l.ReutersV2, "
        "l.BostonTFS, l.BostonV2) if not c.abstract))"
    )
    env = {
        **os.environ,
        "MODELYARD_LOAD_MODELS": "imdb,boston",
        "MODELYARD_LOAD_WEIGHTS": "imdb=3",
        "MODELYARD_LOAD_PROTOCOLS": "tfs",
    }
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[('BostonTFS', 1), ('ImdbTFS', 3)]"
