"""Server CPU per request with the prediction log off and on (SQLite, sample rate 1.0 unless --sample-rate), in turn:
the steadier measure of what logging costs on a shared machine, where throughput sweeps spread more than the
difference (the method of ``loadtests/bench/cpu_ab.py``: server pinned to the first CPU, k6 open loop at a fixed
rate on the second, the server process's CPU time from /proc over the requests answered; the writer thread's work
is in it).

    python -m loadtests.bench.predlog_ab --repo models --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

from loadtests.bench.cpu_ab import cpu_per_request, imdb_bodies
from loadtests.process import ROOT


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
        bodies = imdb_bodies(a.repo, a.data_dir, Path(d))
        arms = {"off": [], "on": ["--prediction-log", f"sqlite:///{Path(d) / 'predictions.db'}",
                                  "--log-sample-rate", str(a.sample_rate)]}
        for rnd in range(a.rounds):
            line = []
            for name, extra in arms.items():
                us, point = cpu_per_request(ROOT, a.repo.resolve(), bodies, a.rate, a.seconds, Path(d) / f"{name}.log",
                                            tuple(extra))
                results[name].append(us)
                line.append(f"{name} {us:.1f} us (p99 {point.p99_ms:.1f} ms)")
            print(f"round {rnd + 1}: " + ", ".join(line), flush=True)
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(f"server CPU per request at {a.rate:,} req/s, median of {a.rounds} rounds: log off {off:.1f} us, "
          f"log on (sample rate {a.sample_rate}) {on:.1f} us, change {100 * (on / off - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
