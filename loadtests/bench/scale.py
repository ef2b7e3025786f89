"""Scaling over cores: modelyard with 1..N workers (and Ray Serve replicas, when Ray is installed) against the HTTP
ceiling run with as many uvicorn workers, in one run, on the same real request bodies; with ``--granian``, modelyard's
app and the ceiling on Granian too (the share column divides by the faster ceiling).

Nothing is pinned: a server with N workers needs N cores, and on a machine with few cores the load generator (wrk,
one thread) shares them, so besides requests/s the table gives the server's CPU time per request (its whole
process tree, from /proc via psutil), the measure that does not depend on who else used the cores.

    python -m loadtests.bench.scale --repo models --data-dir ../shared/datasets --workers 1,2 --ray-replicas 1,2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from loadtests.bench import load
from loadtests.bench.cli import _bodies
from loadtests.process import ServerProcess, free_port, serve_argv
from modelyard.manifest import MANIFEST_FILE
from modelyard.repository import ModelRepository


@dataclass
class Row:
    server: str
    processes: int
    rps: float
    p99_ms: float
    cpu_us_per_request: float
    errors: int


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (live ones)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                total += sum(p.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def _commands(kind: str, n: int, repo: Path, port: int) -> tuple[list[str], dict]:
    serve = serve_argv(repo, port)
    env = {"MODELYARD_THREADS": "1", "MODELYARD_ACCESS_LOG": "false"}
    if kind == "modelyard":
        return serve + ["--workers", str(n)], env
    if kind == "modelyard-shared":
        return serve + ["--workers", str(n), "--worker-socket", "shared"], env
    if kind == "ray":
        return serve + ["--ray", "--replicas", str(n)], {**env, "RAY_USAGE_STATS_ENABLED": "0"}
    granian = [
        str(Path(sys.executable).parent / "granian"),
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(n),
        "--loop",
        "uvloop",
        "--log-level",
        "warning",
        "--no-ws",
    ]
    if kind == "modelyard-granian":
        return granian + ["loadtests.bench.apps.modelyard_asgi:app"], {
            **env,
            "MODELYARD_REPO": str(repo),
            "MODELYARD_GRPC_PORT": "0",
            "MODELYARD_POLL_INTERVAL_S": "0",
            "MODELYARD_VARIANT": "onnx_fp32",
            "MODELYARD_DEVICE": "cpu",
        }
    if kind == "ceiling-granian":
        return granian + ["loadtests.bench.apps.http_ceiling:app"], {}
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(n),
        "--no-access-log",
        "--log-level",
        "warning",
        "loadtests.bench.apps.http_ceiling:app",
    ], {}


def measure(
    kind: str, n: int, repo: Path, route: str, bodies: Path, connections: int, seconds: float, log: Path
) -> Row:
    port = free_port()
    argv, env = _commands(kind, n, repo, port)
    server = ServerProcess(argv, log, port=port, env=env)
    try:
        ceiling = kind in ("http-ceiling", "ceiling-granian")
        server.wait_ready(
            f"{server.url}/" if ceiling else f"{server.url}/v2/health/ready", 300, body=b"{}" if ceiling else None
        )
        url = server.url + route
        load.wrk(url, bodies, connections, 2)  # warm-up
        before = _tree_cpu(server.pid)
        point = load.wrk(url, bodies, connections, seconds)
        used = _tree_cpu(server.pid) - before
    finally:
        server.stop()
    return Row(kind, n, point.rps, round(point.p99_ms, 2), round(used / max(point.requests, 1) * 1e6, 1), point.errors)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--model", default="imdb")
    p.add_argument("--workers", default="1,2", help="worker counts for modelyard and the ceiling")
    p.add_argument("--shared-socket", action="store_true", help="also modelyard with --worker-socket shared")
    p.add_argument("--granian", action="store_true", help="also modelyard's app and the ceiling on Granian")
    p.add_argument("--ray-replicas", default="", help="Ray Serve replica counts (needs the ray extra)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("reports/scale"))
    a = p.parse_args(argv)
    counts = [int(c) for c in a.workers.split(",") if c]
    kinds = [
        "modelyard",
        *(["modelyard-shared"] if a.shared_socket else []),
        "http-ceiling",
        *(["modelyard-granian", "ceiling-granian"] if a.granian else []),
    ]
    plan = [(k, n) for n in counts for k in kinds]
    plan += [("ray", int(n)) for n in a.ray_replicas.split(",") if n]
    repo = ModelRepository(a.repo)
    manifest = json.loads((repo.path(a.model, repo.resolve(a.model)) / MANIFEST_FILE).read_text())
    route = f"/v1/models/{a.model}:predict"
    a.out.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, int], list[Row]] = {}
    with tempfile.TemporaryDirectory() as d:
        only = Path(d) / "repo"  # a repository with only the measured model (modelyard serves all it finds)
        only.mkdir()
        (only / a.model).symlink_to(a.repo.resolve() / a.model)
        bodies = _bodies(a.model, manifest, a.data_dir, Path(d))["tfs"]
        for rnd in range(a.rounds):
            for kind, n in plan:
                row = measure(kind, n, only, route, bodies, a.connections, a.seconds, a.out / f"{kind}-{n}.log")
                results.setdefault((kind, n), []).append(row)
                print(
                    f"round {rnd + 1}: {kind} x{n}: {row.rps:,.0f} req/s, p99 {row.p99_ms} ms, "
                    f"{row.cpu_us_per_request} us CPU/request, {row.errors} errors",
                    flush=True,
                )
    rows = [min(v, key=lambda r: abs(r.rps - statistics.median(x.rps for x in v))) for v in results.values()]
    ceiling = {r.processes: r.rps for r in rows if r.server == "http-ceiling"}
    for r in rows:  # the ceiling is the fastest HTTP stack measured
        if r.server == "ceiling-granian":
            ceiling[r.processes] = max(ceiling.get(r.processes, 0), r.rps)
    print(
        f"\n{a.model}, {a.connections} connections, {a.seconds:g} s, median of {a.rounds} round(s), "
        f"{psutil.cpu_count()} CPUs, unpinned (wrk shares the cores)\n"
    )
    print("| server | processes | req/s | p99 ms | server CPU µs/request | of HTTP ceiling, same processes |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        share = f"{100 * r.rps / ceiling[r.processes]:.0f}%" if r.processes in ceiling else ""
        print(f"| {r.server} | {r.processes} | {r.rps:,.0f} | {r.p99_ms} | {r.cpu_us_per_request} | {share} |")
    (a.out / "scale.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
