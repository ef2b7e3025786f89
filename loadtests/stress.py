"""Hostile load against `modelyard serve`, as a careful operator tries it before production (loopback only,
bounded): a benchmark that prints a table, not a test.

* ``paths``: 8,000 POSTs to distinct long predict paths (and, with an API key set, 1,000 unauthenticated ones):
  the server's RSS before and after, and how much the access log grew.
* ``burst``: the closed-loop capacity (requests/s with 64 connections), then a burst of 10x that many requests
  sent at once: how many were answered 200 and how fast, as goodput against capacity.

    python -m loadtests.stress paths --repo models
    python -m loadtests.stress burst --repo models [--max-queue-size 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

from loadtests.runner import start_modelyard
from modelyard.settings import Settings

BODY = json.dumps({"instances": ["a wonderful film, the acting was superb"]}).encode()


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def _connection(host: str, port: int, requests: list[bytes], statuses: list[int]) -> None:
    """One kept-alive HTTP/1.1 connection sending ``requests`` in turn, each after the previous answer; a
    closed connection is opened again. A minimal client, so that the client costs less than the server."""
    reader = writer = None
    for raw in requests:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(
                next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
            )
            await reader.readexactly(length)
            statuses.append(status)
            if b"connection: close" in head.lower():
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
            statuses.append(0)
            writer = None
    if writer is not None:
        writer.close()


async def _send_all(url: str, requests: list[tuple[str, dict]], connections: int) -> list[int]:
    """Every (path, headers) POSTed with BODY over ``connections`` kept-alive connections; their statuses."""
    host, port = url.removeprefix("http://").split(":")
    raws = [
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + f"Content-Length: {len(BODY)}\r\n\r\n"
        ).encode()
        + BODY
        for path, headers in requests
    ]
    statuses: list[int] = []
    await asyncio.gather(
        *(_connection(host, int(port), raws[i::connections], statuses) for i in range(min(connections, len(raws))))
    )
    return statuses


def paths(repo: Path, n: int, key: bool) -> dict:
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "server.log"
        server = start_modelyard(repo, log, ["--poll-interval-s", "0", *(["--api-key", "k"] if key else [])])
        try:
            server.wait_ready(server.url + "/v2/health/ready", 120)
            asyncio.run(_send_all(server.url, [("/v1/models/imdb:predict", {"x-api-key": "k"})] * 200, 8))
            before, log_before = _rss_mb(server.pid), log.stat().st_size
            long = "m" * 2000
            reqs = [(f"/v1/models/{long}{i}:predict", {} if key else {"x-api-key": "k"}) for i in range(n)]
            statuses = asyncio.run(_send_all(server.url, reqs, 16))
            after, log_after = _rss_mb(server.pid), log.stat().st_size
        finally:
            server.stop()
    return {
        "case": f"{n} distinct {len(long)}-character predict paths" + (", no API key" if key else ""),
        "statuses": sorted(set(statuses)),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "rss_growth_mb": round(after - before, 1),
        "log_growth_mb": round((log_after - log_before) / 2**20, 2),
    }


def burst(repo: Path, queue_size: int, factor: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        server = start_modelyard(
            repo,
            Path(d) / "server.log",
            ["--poll-interval-s", "0", "--max-queue-size", str(queue_size)],
            {"MODELYARD_ACCESS_LOG": "false"},
        )
        try:
            server.wait_ready(server.url + "/v2/health/ready", 120)
            asyncio.run(_send_all(server.url, [("/v1/models/imdb:predict", {})] * 500, 16))  # warm up
            t0 = time.perf_counter()
            statuses = asyncio.run(_send_all(server.url, [("/v1/models/imdb:predict", {})] * 3000, 64))
            capacity = statuses.count(200) / (time.perf_counter() - t0)
            n = int(capacity * factor)
            t0 = time.perf_counter()
            statuses = asyncio.run(_send_all(server.url, [("/v1/models/imdb:predict", {})] * n, min(n, 1000)))
            elapsed = time.perf_counter() - t0
        finally:
            server.stop()
    ok = statuses.count(200)
    return {
        "case": f"burst of {n} requests ({factor}x capacity) on up to 1000 connections, queue {queue_size}",
        "capacity_rps": round(capacity),
        "answered_200": ok,
        "refused_503": statuses.count(503),
        "failed": len(statuses) - ok - statuses.count(503),
        "burst_seconds": round(elapsed, 2),
        "goodput_rps": round(ok / elapsed),
        "goodput_of_capacity": round(ok / elapsed / capacity, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.stress", description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["paths", "burst"])
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--requests", type=int, default=8000)
    p.add_argument(
        "--max-queue-size",
        type=int,
        default=Settings.model_fields["max_queue_size"].default,
        help="the server's queue per model (default: the server's own default)",
    )
    p.add_argument("--factor", type=int, default=10)
    a = p.parse_args(argv)
    rows = (
        [paths(a.repo, a.requests, False), paths(a.repo, 1000, True)]
        if a.mode == "paths"
        else [burst(a.repo, a.max_queue_size, a.factor)]
    )
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
