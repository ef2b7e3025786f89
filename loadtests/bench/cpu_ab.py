"""Server CPU per request, two checkouts of modelyard in turn: the steadier before/after measure of the REST fast
path on a shared machine, where throughput sweeps spread more than the change they are to measure.

Each round starts the ``--before`` checkout's server, then this one's (or ``--after``), each pinned to the first CPU,
warms it up, and holds k6 at a fixed open-loop rate on the second CPU; the server process's CPU time (user + system,
from /proc via psutil) over the run, divided by the requests answered, is its cost per request.

    git worktree add /tmp/before <commit>
    python -m loadtests.bench.cpu_ab --before /tmp/before --repo models --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

from loadtests.bench import load
from loadtests.bench.cli import _bodies
from loadtests.process import ROOT, ServerProcess, free_port, serve_argv
from modelyard.manifest import MANIFEST_FILE
from modelyard.repository import ModelRepository


def imdb_bodies(repo: Path, data_dir: Path | None, folder: Path) -> Path:
    """The bench's own TF Serving bodies for IMDB: one-row requests of real test reviews' token ids."""
    r = ModelRepository(repo)
    manifest = json.loads((r.path("imdb", r.resolve("imdb")) / MANIFEST_FILE).read_text())
    return _bodies("imdb", manifest, data_dir, folder)["tfs"]


def start_server(root: Path, repo: Path, log: Path, extra: tuple[str, ...] = ()) -> ServerProcess:
    """The checkout at ``root`` serving IMDB from ``repo`` on the first CPU (one thread, no access log), started
    with ``extra`` flags; ready."""
    port = free_port()
    server = ServerProcess(
        serve_argv(repo, port, *extra, root=root),
        log,
        port=port,
        cwd=root,
        cpus={0},
        env={"MODELYARD_THREADS": "1", "MODELYARD_ACCESS_LOG": "false", "PYTHONPATH": str(root)},
    )
    try:
        server.wait_ready(server.url + "/v2/health/ready", 120)
    except BaseException:
        server.stop()
        raise
    return server


def cpu_per_request(
    root: Path, repo: Path, bodies: Path, rate: int, seconds: float, log: Path, extra: tuple[str, ...] = ()
) -> tuple[float, load.RatePoint]:
    """(µs of server CPU per answered request, k6's point) for the checkout at ``root`` started with ``extra``
    flags, at ``rate`` req/s."""
    server = start_server(root, repo, log, extra)
    try:
        url = server.url + "/v1/models/imdb:predict"
        load.k6(url, bodies, rate // 2, 3, {1})
        proc = psutil.Process(server.pid)
        before = sum(proc.cpu_times()[:2])
        point = load.k6(url, bodies, rate, seconds, {1})
        used = sum(proc.cpu_times()[:2]) - before
    finally:
        server.stop()
    return used / (point.achieved_rps * seconds) * 1e6, point


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.cpu_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. a git worktree)")
    p.add_argument("--after", type=Path, default=ROOT)
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--rate", type=int, default=2500)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=4)
    a = p.parse_args(argv)
    if len(psutil.Process().cpu_affinity()) < 2:
        print("needs two CPUs: the server on one, k6 on the other", file=sys.stderr)
        return 2
    results: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as d:
        bodies = imdb_bodies(a.repo, a.data_dir, Path(d))
        for rnd in range(a.rounds):
            for name, root in (("before", a.before), ("after", a.after)):
                results[name].append(
                    cpu_per_request(
                        root.resolve(), a.repo.resolve(), bodies, a.rate, a.seconds, Path(d) / f"{name}.log"
                    )[0]
                )
            print(
                f"round {rnd + 1}: before {results['before'][-1]:.1f} us, after {results['after'][-1]:.1f} us",
                flush=True,
            )
    b, f = statistics.median(results["before"]), statistics.median(results["after"])
    print(
        f"server CPU per request at {a.rate:,} req/s, median of {a.rounds} rounds: before {b:.1f} us, "
        f"after {f:.1f} us, change {100 * (f / b - 1):+.1f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
