"""Serving test fixtures: copies of the tiny model repository (``fixture_root``, built once per session in
tests/conftest.py), real server processes started with ``modelyard serve`` on 127.0.0.1, and the app in process.
What tests import lives in ``serving_helpers.py``, never here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from serving_helpers import Server, in_process


@pytest.fixture
def repo_copy(fixture_root, tmp_path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(fixture_root / "repo", dst)
    return dst


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


@pytest.fixture(scope="module")
def rest_client(fixture_root, tmp_path_factory):
    """The app in process (as MLServer's ``rest_client``): httpx's ASGI transport, admin routes on."""
    repo = tmp_path_factory.mktemp("in-process") / "models"
    shutil.copytree(fixture_root / "repo", repo)
    with in_process(repo, enable_admin=True) as client:
        yield client
