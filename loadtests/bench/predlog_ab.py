"""Server CPU per request with the prediction log off and on (SQLite, sample rate 1.0 unless --sample-rate), in turn:
the steadier measure of what logging costs on a shared machine, where throughput sweeps spread more than the
difference (the method of ``loadtests/bench/cpu_ab.py``: server pinned to the first CPU, k6 open loop at a fixed
rate on the second, the server process's CPU time from /proc over the requests answered).

The two servers run side by side for the whole run, both on the first CPU, and get the same requests at the same
rate after the same warm-up, in short windows of load: by default both at once (two k6 processes), so that
whatever else runs on the machine in that window weighs on both alike; with ``--in-turn`` one after the other,
alternating (off-on, on-off, ...). What else runs here changes within seconds: windows far apart differ by more
than the log costs. Each window's CPU is counted until :data:`SETTLE_S` after k6 stops, so that the logged
server's writer thread has written that window's rows; each round's change is taken within the round.

    python -m loadtests.bench.predlog_ab --repo models --data-dir ../shared/datasets
    modelyard bench --prediction-log-ab --data-dir ../shared/datasets   # the same, from the bench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from loadtests.bench import load
from loadtests.bench.cpu_ab import imdb_bodies, start_server
from loadtests.process import ROOT

SETTLE_S = 1.0
"""Seconds after a window's last request that its CPU still counts: the writer thread flushes every 0.25 s."""


def window(proc: psutil.Process, url: str, bodies: Path, rate: int, seconds: float) -> tuple[float, load.RatePoint]:
    """(µs of the server's CPU per answered request, k6's point) over one window of load."""
    before = sum(proc.cpu_times()[:2])
    point = load.k6(url, bodies, rate, seconds, {1})
    time.sleep(SETTLE_S)
    return (sum(proc.cpu_times()[:2]) - before) / (point.achieved_rps * seconds) * 1e6, point


def at_once(servers: dict, bodies: Path, rate: int, seconds: float) -> dict[str, tuple[float, load.RatePoint]]:
    """:func:`window` of every server in ``servers`` ({name: (process, url)}), all loaded at the same time."""
    before = {name: sum(proc.cpu_times()[:2]) for name, (proc, _) in servers.items()}
    with ThreadPoolExecutor(len(servers)) as pool:
        runs = {name: pool.submit(load.k6, url, bodies, rate, seconds, {1}) for name, (_, url) in servers.items()}
        points = {name: run.result() for name, run in runs.items()}
    time.sleep(SETTLE_S)
    return {
        name: ((sum(proc.cpu_times()[:2]) - before[name]) / (points[name].achieved_rps * seconds) * 1e6, points[name])
        for name, (proc, _) in servers.items()
    }


def measure(
    repo: Path,
    data_dir: Path | None,
    rate: int = 1000,
    seconds: float = 6,
    rounds: int = 6,
    sample_rate: float = 1.0,
    say: Callable[[str], object] = print,
    in_turn: bool = False,
) -> dict:
    """µs of server CPU per request, log off and on, per round, with the medians and each round's change."""
    results: dict[str, list[float]] = {"off": [], "on": []}
    changes = []
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        bodies = imdb_bodies(repo, data_dir, Path(d))
        arms = {
            "off": (),
            "on": (
                "--prediction-log",
                f"sqlite:///{Path(d) / 'predictions.db'}",
                "--log-sample-rate",
                str(sample_rate),
            ),
        }
        servers = {}
        for name, extra in arms.items():
            server = start_server(ROOT, repo.resolve(), Path(d) / f"{name}.log", extra)
            stack.callback(server.stop)
            servers[name] = (psutil.Process(server.pid), server.url + "/v1/models/imdb:predict")
        for proc, url in servers.values():
            load.k6(url, bodies, rate // 2, 3, {1})  # warm-up
        for rnd in range(rounds):
            line = []
            order = ("off", "on") if rnd % 2 == 0 else ("on", "off")
            got = (
                {name: window(*servers[name], bodies, rate, seconds) for name in order}
                if in_turn
                else at_once(servers, bodies, rate, seconds)
            )
            for name in order:
                us, point = got[name]
                results[name].append(us)
                line.append(f"{name} {us:.1f} us (p99 {point.p99_ms:.1f} ms)")
            changes.append(100 * (results["on"][-1] / results["off"][-1] - 1))
            say(f"round {rnd + 1}: " + ", ".join(line) + f": {changes[-1]:+.1f}%")
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    return {
        "rate": rate,
        "seconds": seconds,
        "rounds": rounds,
        "sample_rate": sample_rate,
        "windows": "in turn" if in_turn else "at once",
        "us_per_request": results,
        "change_pct_per_round": changes,
        "median_off_us": off,
        "median_on_us": on,
        "change_of_medians_pct": 100 * (on / off - 1),
        "median_change_pct": statistics.median(changes),
    }


def summary(r: dict) -> str:
    return (
        f"server CPU per request at {r['rate']:,} req/s each, {r['rounds']} rounds ({r['windows']}): "
        f"log off {r['median_off_us']:.1f} us, "
        f"log on (sample rate {r['sample_rate']}) {r['median_on_us']:.1f} us (medians), change "
        f"{r['change_of_medians_pct']:+.1f}%; median of the rounds' changes {r['median_change_pct']:+.1f}% "
        f"({', '.join(f'{c:+.1f}%' for c in r['change_pct_per_round'])})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.predlog_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--rate", type=int, default=1000, help="requests a second to each server")
    p.add_argument("--seconds", type=float, default=6, help="seconds of load per window")
    p.add_argument("--rounds", type=int, default=6, help="rounds of two windows, one per server")
    p.add_argument("--sample-rate", type=float, default=1.0, help="the logged server's --log-sample-rate")
    p.add_argument("--in-turn", action="store_true", help="load one server at a time (default: both at once)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if len(psutil.Process().cpu_affinity()) < 2:
        print("needs two CPUs: the server on one, k6 on the other", file=sys.stderr)
        return 2
    r = measure(
        a.repo, a.data_dir, a.rate, a.seconds, a.rounds, a.sample_rate, lambda s: print(s, flush=True), a.in_turn
    )
    print(summary(r))
    if a.out:
        a.out.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
