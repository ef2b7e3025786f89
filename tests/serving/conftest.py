"""Serving test fixtures: a tiny model repository that follows the export contract (built once per
session, in a subprocess, so TensorFlow never loads in the test process) and real server processes
started with ``modelyard serve`` on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@pytest.fixture
def repo_copy(fixture_root, tmp_path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(fixture_root / "repo", dst)
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real ``modelyard serve`` process."""

    def __init__(self, repo: Path, log_path: Path, args: tuple[str, ...] = (), env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {**os.environ, "MODELYARD_POLL_INTERVAL_S": "0.3", "MODELYARD_ACCESS_LOG": "false",
                    **(env or {})}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "modelyard", "serve", "--repo", str(repo),
                                      "--port", str(self.port), *args], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.client.get("/v2/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(repo: Path, *args: str, env: dict | None = None) -> Server:
        s = Server(repo, tmp_path / f"server{len(servers)}.log", args, env)
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(fixture_root, tmp_path_factory):
    """One shared server with all three models, admin routes off, no API key."""
    d = tmp_path_factory.mktemp("main-server")
    repo = d / "models"
    shutil.copytree(fixture_root / "repo", repo)
    s = Server(repo, d / "server.log")
    yield s
    s.stop()


def reference(fixture_root: Path, name: str) -> dict[str, np.ndarray]:
    """The Keras model's own predictions (made in process when the fixture was built)."""
    with np.load(fixture_root / "repo" / name / "1" / "reference.npz") as z:
        return {k: z[k] for k in z.files}
