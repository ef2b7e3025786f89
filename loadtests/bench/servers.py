"""The servers `modelyard bench` measures, each started in turn on a free loopback port, serving the same ONNX
file: modelyard (batched and unbatched), the naive FastAPI baseline, the peers (LitServe, BentoML, from their own
virtual environment so their pins never touch modelyard's), and the HTTP ceiling (no model)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.process import ROOT

APPS = "loadtests.bench.apps"
KEYS = ("modelyard", "modelyard-unbatched", "fastapi", "litserve", "bentoml", "http-ceiling")
"""Every server `modelyard bench` knows, in its default order."""


@dataclass(frozen=True)
class Setup:
    """What every server is given: one model, one route, one request format, the same session threads."""

    model: str
    repo: Path
    """A repository holding only ``model`` (modelyard serves every model it finds)."""
    onnx: Path
    route: str
    width: int
    """Multi-hot width for a text model (the apps encode token ids); 0 for Boston's rows of numbers."""
    threads: int = 1
    peers_python: Path | None = None
    device: str = "cpu"
    """modelyard's ``--device``; the baseline and the peers run onnxruntime on CPU."""


@dataclass(frozen=True)
class Contender:
    key: str
    title: str
    role: str
    """``modelyard``, ``baseline``, ``peer`` or ``ceiling``."""
    argv: list[str]
    env: dict = field(default_factory=dict)


def contenders(s: Setup, port: int, keys: list[str]) -> list[Contender]:
    """The servers named in ``keys`` (some of :data:`KEYS`), in that order, as commands that listen on ``port``."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": pythonpath, "MODELYARD_BENCH_ONNX": str(s.onnx), "MODELYARD_BENCH_ROUTE": s.route,
           "MODELYARD_BENCH_WIDTH": str(s.width), "MODELYARD_BENCH_THREADS": str(s.threads),
           "MODELYARD_BENCH_PORT": str(port)}
    uvicorn = ["-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level",
               "warning"]
    serve = [sys.executable, "-m", "modelyard", "serve", "--repo", str(s.repo), "--host", "127.0.0.1", "--port",
             str(port), "--runtime", "onnx", "--variant", "onnx_fp32", "--device", s.device, "--poll-interval-s", "0"]
    my_env = {"MODELYARD_THREADS": str(s.threads), "MODELYARD_ACCESS_LOG": "false"}
    peers = str(s.peers_python) if s.peers_python else "python"
    bentoml = str(Path(peers).parent / "bentoml") if s.peers_python else "bentoml"
    table = {
        "modelyard": Contender("modelyard", "modelyard (dynamic batching)", "modelyard", serve, my_env),
        "modelyard-unbatched": Contender("modelyard-unbatched", "modelyard (no batching)", "modelyard",
                                         serve + ["--max-batch-size", "1"], my_env),
        "fastapi": Contender("fastapi", "FastAPI + onnxruntime per request (baseline)", "baseline",
                             [sys.executable, *uvicorn, f"{APPS}.naive_fastapi:app"], env),
        "litserve": Contender("litserve", "LitServe (batching on)", "peer",
                              [peers, "-m", f"{APPS}.litserve_app"], env),
        "bentoml": Contender("bentoml", "BentoML (adaptive batching on)", "peer",
                             [bentoml, "serve", f"{APPS}.bentoml_service:Model",
                              "--host", "127.0.0.1", "--port", str(port)], env),
        "http-ceiling": Contender("http-ceiling", "HTTP ceiling: bare ASGI, constant answer, no model", "ceiling",
                                  [sys.executable, *uvicorn, f"{APPS}.http_ceiling:app"], env),
    }
    return [table[k] for k in keys]


def peers_python(venv: Path) -> Path | None:
    """The peers' interpreter, when their virtual environment exists (``make bench-peers`` creates it)."""
    p = Path(venv) / "bin" / "python"
    return p if p.is_file() and os.access(p, os.X_OK) else None
