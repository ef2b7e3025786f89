"""``modelyard serve --workers N``: one port, N server processes, a supervisor (serving/workers.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import prometheus_client  # noqa: F401 - imported before a test sets PROMETHEUS_MULTIPROC_DIR: this process stays
import psutil  # in single-process mode (the client picks its value class at import)
import pytest

from modelyard.errors import ModelyardError
from modelyard.settings import Settings
from serving.workers import Supervisor

BOSTON = {"instances": [[0.1, 0.0, 5.0, 0.0, 0.5, 6.0, 60.0, 4.0, 4.0, 300.0, 18.0, 390.0, 10.0]]}


def _workers(supervisor_pid: int) -> list[int]:
    """The live worker processes (not the dead one the supervisor has yet to reap)."""
    pids = []
    for p in psutil.Process(supervisor_pid).children():
        try:
            if "spawn_main" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                pids.append(p.pid)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    return sorted(pids)


def _metric(url: str, line_start: str) -> float:
    """The sum of the series whose exposition line starts with ``line_start``."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(url + "/metrics").text.splitlines()
        if line.startswith(line_start)
    )


def _fresh_connections(url: str, n: int) -> list[httpx.Response]:
    """``n`` predictions, each on a new connection, so that the kernel spreads them over the workers."""
    return [httpx.post(url + "/v1/models/boston:predict", json=BOSTON, timeout=30) for _ in range(n)]


def _publish_copy(model_dir: Path, src: int, version: int) -> None:
    stage = model_dir / f".staging-{version}"
    shutil.copytree(model_dir / str(src), stage)
    m = json.loads((stage / "manifest.json").read_text())
    m["version"] = version
    (stage / "manifest.json").write_text(json.dumps(m))
    os.rename(stage, model_dir / str(version))


@pytest.mark.parametrize("socket_mode", ["reuseport"])
def test_two_workers_share_port_metrics_reload_restart_and_drain(repo_copy, start_server, socket_mode):
    s = start_server(repo_copy, "--workers", "2", "--worker-socket", socket_mode, "--drain-timeout-s", "5")
    workers = _workers(s.pid)
    assert len(workers) == 2

    # every answer is right, and /metrics (read from whichever worker) counts the requests of both
    answers = _fresh_connections(s.url, 40)
    assert [r.status_code for r in answers] == [200] * 40
    assert len({r.content for r in answers}) == 1
    route = 'modelyard_requests_total{model="boston",protocol="rest",route="v1_predict",status="200"'
    assert _metric(s.url, route) == 40

    # a new version published into the repository is served by every worker (each polls it)
    _publish_copy(repo_copy / "boston", 1, 2)
    deadline = time.monotonic() + 20
    while {r.headers["x-model-version"] for r in _fresh_connections(s.url, 10)} != {"2"}:
        assert time.monotonic() < deadline, "not every worker serves version 2"
        time.sleep(0.3)

    # a worker that dies is restarted and counted; the counts of the dead one stay in the sums
    before = _metric(s.url, route)
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while len(set(_workers(s.pid)) - {workers[0]}) < 2:
        assert time.monotonic() < deadline, "the dead worker was not restarted"
        time.sleep(0.2)
    deadline = time.monotonic() + 20
    while _metric(s.url, "modelyard_worker_restarts_total") != 1:
        assert time.monotonic() < deadline, "the restart was not counted"
        time.sleep(0.2)
    assert all(r.status_code == 200 for r in _fresh_connections(s.url, 10))
    assert _metric(s.url, route) >= before + 10

    # SIGTERM: every worker drains, the supervisor exits 0 within the drain timeout and a margin
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < 5 + 1.5


def started_then_wait(settings, index, conn, shared) -> None:
    """A worker that starts, then waits to be stopped (SIGTERM ends it)."""
    conn.send(("started", ""))
    time.sleep(60)


def fails_at_start(settings, index, conn, shared) -> None:
    """The first worker starts; the second cannot (as one whose socket or app fails)."""
    if index == 0:
        return started_then_wait(settings, index, conn, shared)
    conn.send(("failed", "OSError: cannot open the model repository"))
    raise SystemExit(3)


def test_startup_fails_as_a_whole_with_the_cause(tmp_path, monkeypatch):
    from loadtests.process import free_port

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    sup = Supervisor(Settings(port=free_port(), workers=2, drain_timeout_s=2), target=fails_at_start)
    with pytest.raises(ModelyardError, match=r"worker 2 of 2 failed to start \(exit code 3\): OSError: cannot open"):
        sup.run()
    assert not any(w.process.is_alive() for w in sup.workers)


def test_port_in_use_is_one_clear_error(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for mode in ("reuseport", "shared"):
            with pytest.raises(ModelyardError, match=rf"cannot listen on 127.0.0.1:{port} \(--port"):
                Supervisor(Settings(port=port, workers=2, worker_socket=mode))


def test_admin_routes_need_one_worker(tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "modelyard", "serve", "--repo", str(tmp_path), "--workers", "2", "--enable-admin"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "error: --enable-admin needs --workers 1: an admin load or unload would reach one worker only; with "
        "workers, change the model repository instead (every worker polls it)"
    )
