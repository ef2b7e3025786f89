"""A server in a subprocess on 127.0.0.1: started, waited for until it answers, stopped with SIGTERM (then
SIGKILL, for its whole process group). Used by ``modelyard loadtest --start-server``, ``modelyard bench`` and the
serving tests, so every server is started and stopped the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ServerNotReady(RuntimeError):
    pass


def serve_argv(repo: Path, port: int, *extra: str, root: Path = ROOT) -> list[str]:
    """``python -m modelyard serve`` of the checkout at ``root`` as the benchmarks start it: ``repo`` on ``port``,
    no repository polling, the onnx_fp32 variant on CPU, and no gRPC port (where the checkout has gRPC), then
    ``extra`` flags."""
    grpc_off = ["--grpc-port", "0"] if "grpc_port" in (root / "modelyard" / "settings.py").read_text() else []
    argv = [sys.executable, "-m", "modelyard", "serve", "--repo", str(repo), "--port", str(port), *grpc_off]
    return argv + ["--poll-interval-s", "0", "--variant", "onnx_fp32", "--device", "cpu", *extra]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, body: bytes | None = None) -> bool:
    """True when ``url`` answers 200 (GET, or POST of a JSON ``body``)."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ServerProcess:
    """``argv`` run in its own process group with its output in ``log_path``; ``cpus`` pins it (Linux)."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        port: int,
        env: dict | None = None,
        cwd: Path = ROOT,
        cpus: set[int] | None = None,
    ):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pin,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, url: str, timeout: float, body: bytes | None = None) -> None:
        """Wait until ``url`` answers 200; a server that exits or never answers is an error naming its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerNotReady(
                    f"server exited with code {self.proc.returncode} before it was ready; "
                    f"log: {self.log_path}\n{self.tail()}"
                )
            if answers(url, body):
                return
            time.sleep(0.2)
        raise ServerNotReady(f"server not ready after {timeout:.0f}s; log: {self.log_path}\n{self.tail()}")

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # servers that fork workers (LitServe, BentoML) may leave children behind: end the whole group
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._log.close()
        return self.proc.returncode
