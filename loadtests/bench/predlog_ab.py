"""Server CPU per request with the prediction log off and on (SQLite, sample rate 1.0 unless --sample-rate), in turn:
the steadier measure of what logging costs on a shared machine, where throughput sweeps spread more than the
difference (the method of ``loadtests/bench/cpu_ab.py``: server pinned to the first CPU, k6 open loop at a fixed
rate on the second, the server process's CPU time from /proc over the requests answered; the writer thread's work
is in it).

    python -m loadtests.bench.predlog_ab --repo models --data-dir ../shared/datasets
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
from loadtests.process import ServerProcess, free_port
from modelyard.manifest import MANIFEST_FILE
from modelyard.repository import ModelRepository


def measure(repo: Path, bodies: Path, rate: int, seconds: float, log: Path, extra: list[str]) -> tuple[float, object]:
    """(µs of server CPU per answered request, the k6 rate point) at ``rate`` req/s."""
    port = free_port()
    server = ServerProcess([sys.executable, "-m", "modelyard", "serve", "--repo", str(repo), "--port", str(port),
                            "--poll-interval-s", "0", "--variant", "onnx_fp32", "--device", "cpu", "--grpc-port", "0",
                            *extra], log, port=port, cpus={0},
                           env={"MODELYARD_THREADS": "1", "MODELYARD_ACCESS_LOG": "false"})
    try:
        server.wait_ready(server.url + "/v2/health/ready", 120)
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
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.predlog_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sample-rate", type=float, default=1.0, help="the logged server's --log-sample-rate")
    a = p.parse_args(argv)
    if len(psutil.Process().cpu_affinity()) < 2:
        print("needs two CPUs: the server on one, k6 on the other", file=sys.stderr)
        return 2
    results: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as d:
        repo = ModelRepository(a.repo)
        manifest = json.loads((repo.path("imdb", repo.resolve("imdb")) / MANIFEST_FILE).read_text())
        bodies = _bodies("imdb", manifest, a.data_dir, Path(d))["tfs"]  # the bench's own TF Serving bodies
        arms = {"off": [], "on": ["--prediction-log", f"sqlite:///{Path(d) / 'predictions.db'}",
                                  "--log-sample-rate", str(a.sample_rate)]}
        for rnd in range(a.rounds):
            line = []
            for name, extra in arms.items():
                us, point = measure(a.repo.resolve(), bodies, a.rate, a.seconds, Path(d) / f"{name}.log", extra)
                results[name].append(us)
                line.append(f"{name} {us:.1f} us (p99 {point.p99_ms:.1f} ms)")
            print(f"round {rnd + 1}: " + ", ".join(line), flush=True)
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(f"server CPU per request at {a.rate:,} req/s, median of {a.rounds} rounds: log off {off:.1f} us, "
          f"log on (sample rate {a.sample_rate}) {on:.1f} us, change {100 * (on / off - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
