"""What Ray adds before the first request: seconds until ``/v2/health/ready`` answers 200 and the memory of the
server's whole process tree (RSS and PSS, with Ray its GCS, raylet, controller, proxy and replica), for
``modelyard serve`` standalone and with ``--ray --replicas N``, started in turn on a free loopback port.

    python -m loadtests.bench.ray_footprint --repo models [--replicas 1]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

from loadtests.process import ServerProcess, free_port


def footprint(pid: int) -> tuple[int, float, float]:
    """Processes, RSS GiB and PSS GiB of ``pid`` and its descendants."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    rss = pss = 0
    for p in procs:
        try:
            m = p.memory_full_info()
        except psutil.Error:
            continue
        rss, pss = rss + m.rss, pss + m.pss
    return len(procs), rss / 2**30, pss / 2**30


def measure(repo: Path, extra: list[str], log: Path) -> str:
    port = free_port()
    t0 = time.monotonic()
    serve = [sys.executable, "-m", "modelyard", "serve", "--repo", str(repo), "--port", str(port), "--grpc-port", "0"]
    server = ServerProcess(
        serve + extra,
        log,
        port=port,
        env={"RAY_USAGE_STATS_ENABLED": "0", "MODELYARD_ACCESS_LOG": "false"},
    )
    try:
        server.wait_ready(server.url + "/v2/health/ready", 300)
        ready_s = time.monotonic() - t0
        time.sleep(2)  # let the last workers settle
        n, rss, pss = footprint(server.pid)
    finally:
        server.stop(60)
    return f"ready in {ready_s:.1f} s, {n} processes, RSS {rss:.2f} GiB, PSS {pss:.2f} GiB"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=Path("models"))
    ap.add_argument("--replicas", type=int, default=1)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        print("standalone:", measure(args.repo, [], Path(tmp) / "standalone.log"))
        print(
            f"ray, {args.replicas} replica(s):",
            measure(args.repo, ["--ray", "--replicas", str(args.replicas)], Path(tmp) / "ray.log"),
        )


if __name__ == "__main__":
    main()
