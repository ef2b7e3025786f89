"""What serving tests share: a real ``modelyard serve`` process with a client, the app in process behind httpx's
ASGI transport, and the fixture models' own reference predictions. Tests import it (``from serving_helpers import
...``); the fixtures that use it are in ``conftest.py``."""

from __future__ import annotations

import contextlib
import sys
import time
from functools import partial
from pathlib import Path

import httpx
import numpy as np

from loadtests.process import ServerProcess, free_port

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


class Server(ServerProcess):
    """A real ``modelyard serve`` process, ready, with an HTTP client."""

    def __init__(self, repo: Path, log_path: Path, args: tuple[str, ...] = (), env: dict | None = None):
        port = free_port()
        self.grpc_port = free_port()
        super().__init__(
            [sys.executable, "-m", "modelyard", "serve", "--repo", str(repo), "--port", str(port), *args],
            log_path,
            port=port,
            env={
                "MODELYARD_POLL_INTERVAL_S": "0.3",
                "MODELYARD_ACCESS_LOG": "false",
                "MODELYARD_GRPC_PORT": str(self.grpc_port),
                **(env or {}),
            },
        )
        self.grpc_url = f"127.0.0.1:{self.grpc_port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.wait_ready(self.url + "/v2/health/ready", 60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        self.client.close()
        return super().stop(timeout)


def reference(fixture_root: Path, name: str) -> dict[str, np.ndarray]:
    """The Keras model's own predictions (made in process when the fixture was built)."""
    with np.load(fixture_root / "repo" / name / "1" / "reference.npz") as z:
        return {k: z[k] for k in z.files}


class InProcessClient:
    """A blocking face on ``httpx.AsyncClient`` over ``httpx.ASGITransport``: its requests run on the portal's
    event loop, the one the app's lifespan (data plane, batchers) runs on."""

    def __init__(self, portal, app):
        self.portal, self.app = portal, app
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

    app = create_app(Settings(**{"repo": repo, "poll_interval_s": 0, "grpc_port": 0, "access_log": False, **settings}))
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(app.app.router.lifespan_context(app.app)):
        client = InProcessClient(portal, app)
        deadline = time.monotonic() + 60
        while client.get("/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "models did not load"
            time.sleep(0.05)
        yield client
