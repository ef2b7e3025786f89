"""Serving test fixtures: a tiny model repository that follows the export contract (built once per
session, in a subprocess, so TensorFlow never loads in the test process) and real server processes
started with ``modelyard serve`` on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pytest

from loadtests.process import ServerProcess, free_port

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@pytest.fixture
def repo_copy(fixture_root, tmp_path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(fixture_root / "repo", dst)
    return dst


class Server(ServerProcess):
    """A real ``modelyard serve`` process, ready, with an HTTP client."""

    def __init__(self, repo: Path, log_path: Path, args: tuple[str, ...] = (), env: dict | None = None):
        port = free_port()
        self.grpc_port = free_port()
        super().__init__([sys.executable, "-m", "modelyard", "serve", "--repo", str(repo), "--port", str(port),
                          *args], log_path, port=port,
                         env={"MODELYARD_POLL_INTERVAL_S": "0.3", "MODELYARD_ACCESS_LOG": "false",
                              "MODELYARD_GRPC_PORT": str(self.grpc_port), **(env or {})})
        self.grpc_url = f"127.0.0.1:{self.grpc_port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.wait_ready(self.url + "/v2/health/ready", 60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        self.client.close()
        return super().stop(timeout)


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


class InProcessClient:
    """A blocking face on ``httpx.AsyncClient`` over ``httpx.ASGITransport``: its requests run on the portal's
    event loop, the one the app's lifespan (data plane, batchers) runs on."""

    def __init__(self, portal, app):
        self._portal = portal
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://in-process")

    def request(self, method: str, url: str, **kw) -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, url, **kw))

    def get(self, url: str, **kw) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw) -> httpx.Response:
        return self.request("POST", url, **kw)


@contextlib.contextmanager
def in_process(repo: Path, **settings):
    """An :class:`InProcessClient` on ``create_app(Settings(repo=repo, **settings))``, lifespan run, every model
    loaded; no gRPC endpoint."""
    from anyio.from_thread import start_blocking_portal

    from modelyard.settings import Settings
    from serving.app import create_app

    app = create_app(Settings(**{"repo": repo, "poll_interval_s": 0, "grpc_port": 0, "access_log": False,
                                 **settings}))
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
            app.app.router.lifespan_context(app.app)):
        client = InProcessClient(portal, app)
        deadline = time.monotonic() + 60
        while client.get("/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "models did not load"
            time.sleep(0.05)
        yield client


@pytest.fixture(scope="module")
def rest_client(fixture_root, tmp_path_factory):
    """The app in process (as MLServer's ``rest_client``): httpx's ASGI transport, admin routes on."""
    repo = tmp_path_factory.mktemp("in-process") / "models"
    shutil.copytree(fixture_root / "repo", repo)
    with in_process(repo, enable_admin=True) as client:
        yield client
