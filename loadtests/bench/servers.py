"""The servers `modelyard bench` measures, each started in turn on free loopback ports, serving the same ONNX
file: modelyard (batched and unbatched over TF Serving REST, and over KServe V2 REST and gRPC), the naive FastAPI
baseline, the peers (LitServe, BentoML, MLServer over V2 REST and gRPC, from their own virtual environment so their
pins never touch modelyard's), and the HTTP and gRPC ceilings (no model).

Each contender names its protocol (:data:`loadtests.bench.bodies.PROTOCOLS`): the bodies it is sent, and the load
generators (wrk and k6 for REST, :mod:`loadtests.bench.grpc_load` for gRPC)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.process import ROOT

APPS = "loadtests.bench.apps"
KEYS = (
    "modelyard",
    "modelyard-logged",
    "modelyard-unbatched",
    "modelyard-v2",
    "modelyard-grpc",
    "modelyard-ray",
    "modelyard-ray-2",
    "fastapi",
    "litserve",
    "bentoml",
    "mlserver",
    "mlserver-grpc",
    "http-ceiling",
    "grpc-ceiling",
)
"""Every server `modelyard bench` knows, in its default order."""
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
"""The Ray Serve rows report nothing to Ray's usage statistics."""
PEERS = {"litserve": "litserve", "bentoml": "bentoml", "mlserver": "mlserver", "mlserver-grpc": "mlserver"}
"""The contenders that run in the peers' environment, and the package each needs there."""


@dataclass(frozen=True)
class Setup:
    """What every server is given: one model, one route, one request format, the same session threads."""

    model: str
    repo: Path
    """A repository holding only ``model`` (modelyard serves every model it finds)."""
    onnx: Path
    route: str
    """The TF Serving predict route; V2 routes are :attr:`v2_route`."""
    width: int
    """Multi-hot width for a text model (the apps encode token ids); 0 for Boston's rows of numbers."""
    threads: int = 1
    peers_python: Path | None = None
    device: str = "cpu"
    """modelyard's ``--device``; the baseline and the peers run onnxruntime on CPU."""

    @property
    def v2_route(self) -> str:
        return f"/v2/models/{self.model}/infer"


@dataclass(frozen=True)
class Contender:
    key: str
    title: str
    role: str
    """``modelyard``, ``baseline``, ``peer``, ``ceiling`` (the HTTP ceiling, the "of HTTP ceiling" column's
    reference) or ``grpc-ceiling``."""
    argv: list[str]
    env: dict = field(default_factory=dict)
    protocol: str = "tfs"
    """``tfs`` (TF Serving REST), ``v2-rest`` or ``v2-grpc`` (KServe V2): what it is sent, and by which generator."""

    def route(self, s: Setup) -> str:
        return s.route if self.protocol == "tfs" else s.v2_route


def contenders(s: Setup, port: int, keys: list[str], grpc_port: int = 0) -> list[Contender]:
    """The servers named in ``keys`` (some of :data:`KEYS`), in that order, as commands that listen on ``port``
    (HTTP) and, those that serve gRPC (MLServer always does), on ``grpc_port``. modelyard's gRPC endpoint
    (``--grpc-port``) is off (0) unless it is the one measured, so it never binds its default port 8001."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        "PYTHONPATH": pythonpath,
        "MODELYARD_BENCH_ONNX": str(s.onnx),
        "MODELYARD_BENCH_ROUTE": s.route,
        "MODELYARD_BENCH_WIDTH": str(s.width),
        "MODELYARD_BENCH_THREADS": str(s.threads),
        "MODELYARD_BENCH_PORT": str(port),
        "MODELYARD_BENCH_GRPC_PORT": str(grpc_port),
        "MODELYARD_BENCH_MODEL": s.model,
    }
    uvicorn = ["-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    serve = [
        sys.executable,
        "-m",
        "modelyard",
        "serve",
        "--repo",
        str(s.repo),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--runtime",
        "onnx",
        "--variant",
        "onnx_fp32",
        "--device",
        s.device,
        "--poll-interval-s",
        "0",
    ]
    my_env = {"MODELYARD_THREADS": str(s.threads), "MODELYARD_ACCESS_LOG": "false"}
    rest_only, with_grpc = serve + ["--grpc-port", "0"], serve + ["--grpc-port", str(grpc_port)]
    peers = str(s.peers_python) if s.peers_python else "python"
    bentoml = str(Path(peers).parent / "bentoml") if s.peers_python else "bentoml"
    mlserver = [peers, "-m", f"{APPS}.mlserver_app"]
    table = {
        "modelyard": Contender("modelyard", "modelyard (dynamic batching)", "modelyard", rest_only, my_env),
        "modelyard-logged": Contender(
            "modelyard-logged",
            "modelyard (dynamic batching, prediction log on: SQLite, sample rate 1.0)",
            "modelyard",
            rest_only
            + ["--prediction-log", f"sqlite:///{s.repo.parent / 'predictions.db'}", "--log-sample-rate", "1.0"],
            my_env,
        ),
        "modelyard-unbatched": Contender(
            "modelyard-unbatched", "modelyard (no batching)", "modelyard", rest_only + ["--max-batch-size", "1"], my_env
        ),
        "modelyard-v2": Contender(
            "modelyard-v2", "modelyard (V2 REST, dynamic batching)", "modelyard", rest_only, my_env, protocol="v2-rest"
        ),
        "modelyard-grpc": Contender(
            "modelyard-grpc",
            "modelyard (V2 gRPC, dynamic batching)",
            "modelyard",
            with_grpc,
            my_env,
            protocol="v2-grpc",
        ),
        # the same app as a Ray Serve deployment behind Ray's HTTP proxy, on a local Ray started by the command
        "modelyard-ray": Contender(
            "modelyard-ray",
            "modelyard on Ray Serve (1 replica)",
            "modelyard",
            rest_only + ["--ray", "--replicas", "1"],
            {**my_env, **RAY_ENV},
        ),
        "modelyard-ray-2": Contender(
            "modelyard-ray-2",
            "modelyard on Ray Serve (2 replicas)",
            "modelyard",
            rest_only + ["--ray", "--replicas", "2"],
            {**my_env, **RAY_ENV},
        ),
        "fastapi": Contender(
            "fastapi",
            "FastAPI + onnxruntime per request (baseline)",
            "baseline",
            [sys.executable, *uvicorn, f"{APPS}.naive_fastapi:app"],
            env,
        ),
        "litserve": Contender("litserve", "LitServe (batching on)", "peer", [peers, "-m", f"{APPS}.litserve_app"], env),
        "bentoml": Contender(
            "bentoml",
            "BentoML (adaptive batching on)",
            "peer",
            [bentoml, "serve", f"{APPS}.bentoml_service:Model", "--host", "127.0.0.1", "--port", str(port)],
            env,
        ),
        "mlserver": Contender(
            "mlserver", "MLServer 1.7 (V2 REST, adaptive batching)", "peer", mlserver, env, protocol="v2-rest"
        ),
        "mlserver-grpc": Contender(
            "mlserver-grpc", "MLServer 1.7 (V2 gRPC, adaptive batching)", "peer", mlserver, env, protocol="v2-grpc"
        ),
        "http-ceiling": Contender(
            "http-ceiling",
            "HTTP ceiling: bare ASGI, constant answer, no model",
            "ceiling",
            [sys.executable, *uvicorn, f"{APPS}.http_ceiling:app"],
            env,
        ),
        "grpc-ceiling": Contender(
            "grpc-ceiling",
            "gRPC ceiling: bare grpc.aio, constant answer, no model",
            "grpc-ceiling",
            [sys.executable, "-m", f"{APPS}.grpc_ceiling"],
            env,
            protocol="v2-grpc",
        ),
    }
    return [table[k] for k in keys]


def peers_python(venv: Path) -> Path | None:
    """The peers' interpreter, when their virtual environment exists (``make bench-peers`` creates it)."""
    p = Path(venv) / "bin" / "python"
    return p if p.is_file() and os.access(p, os.X_OK) else None


def installed(python: Path | None, packages: set[str]) -> set[str]:
    """Which of ``packages`` the interpreter ``python`` has (an older peers environment may lack MLServer)."""
    if python is None or not packages:
        return set()
    import subprocess

    code = (
        "import importlib.metadata as m, sys\n"
        "for p in sys.argv[1:]:\n"
        "    try: m.version(p); print(p)\n"
        "    except m.PackageNotFoundError: pass"
    )
    r = subprocess.run([str(python), "-c", code, *sorted(packages)], capture_output=True, text=True, timeout=60)
    return set(r.stdout.split()) if r.returncode == 0 else set()
