"""A normal client's latency, idle and beside a slow-loris attack (a measurement, not a CI test).

Starts ``modelyard serve`` (REST only), then measures one client sending predict requests back to back on a
kept-alive connection: first alone, then while ``--loris`` other connections each send a request head one header
line every ``--interval`` seconds and never finish it (each one the server closes is opened again, as the attack
does). Prints p50/p99 of both phases, their ratio, how many loris connections the server closed, and the server's
CPU use while only the loris connections are open (the attack's own cost, which other load on the machine
does not blur as it blurs latency percentiles).

    python -m loadtests.slowloris --repo models [--loris 500] [--seconds 15] [--interval 2]

The server runs on the first half of the CPUs, the client and the loris connections on the rest (Linux).
Server settings come from the environment as usual (e.g. ``MODELYARD_HEADER_TIMEOUT_S``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from loadtests.runner import start_modelyard

BODY = {"instances": ["A wonderful film, the acting was superb and the story moving."]}
HEAD = b"POST /v1/models/imdb:predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"


def latencies(url: str, seconds: float) -> list[float]:
    """Milliseconds per request, requests back to back on one kept-alive connection for ``seconds``."""
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for _ in range(50):  # warm up the connection and the model
            c.post("/v1/models/imdb:predict", json=BODY).raise_for_status()
        end = time.perf_counter() + seconds
        while (t0 := time.perf_counter()) < end:
            c.post("/v1/models/imdb:predict", json=BODY).raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return out


def cpu_percent(pid: int, seconds: float) -> float:
    """The process's CPU use over ``seconds``, in % of one core."""
    proc = psutil.Process(pid)
    t0, c0 = time.monotonic(), sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    return 100 * (sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0)


def summary(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100)
    return {"requests": len(ms), "p50_ms": q[49], "p99_ms": q[98]}


# ------------------------------------------------------------------ the attack, in its own process
async def _loris(port: int, interval: float, open_now, closed_by_server, stop) -> None:
    """One slow connection for ever: the head's first part, then a header line every ``interval`` s (with
    jitter); when the server closes it, count it and open another."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(interval)
            continue
        with open_now.get_lock():
            open_now.value += 1
        writer.write(HEAD)
        try:
            while not stop.is_set():
                await asyncio.sleep(interval * random.uniform(0.5, 1.5))
                writer.write(b"X-Loris-%d: 1\r\n" % random.randrange(10**6))
                await writer.drain()
                if reader.at_eof() or writer.is_closing():
                    break
        except OSError:
            pass
        with open_now.get_lock():
            open_now.value -= 1
        if not stop.is_set():
            with closed_by_server.get_lock():
                closed_by_server.value += 1
        writer.close()


def run_loris(port: int, count: int, interval: float, open_now, closed_by_server, stop) -> None:
    async def main():
        tasks = [asyncio.create_task(_loris(port, interval, open_now, closed_by_server, stop)) for _ in range(count)]
        while not stop.is_set():
            await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def _split_cpus() -> tuple[set[int] | None, set[int] | None]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None, None
    return set(cpus[: len(cpus) // 2]), set(cpus[len(cpus) // 2 :])


def measure(repo: Path, loris: int, seconds: float, interval: float) -> dict:
    server_cpus, client_cpus = _split_cpus()
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)  # the loris process inherits it
    log = Path(tempfile.mkdtemp(prefix="slowloris-")) / "server.log"
    server = start_modelyard(repo, log, env={"MODELYARD_ACCESS_LOG": "false"})
    if server_cpus:
        os.sched_setaffinity(server.pid, server_cpus)
    try:
        server.wait_ready(server.url + "/v2/health/ready", 120)
        idle = summary(latencies(server.url, seconds))
        ctx = mp.get_context("spawn")
        open_now, closed_by_server, stop = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Event()
        attack = ctx.Process(target=run_loris, args=(server.port, loris, interval, open_now, closed_by_server, stop))
        attack.start()
        deadline = time.monotonic() + 30
        while open_now.value < loris and time.monotonic() < deadline:
            time.sleep(0.1)
        opened = open_now.value
        cpu = cpu_percent(server.pid, 5)
        attacked = summary(latencies(server.url, seconds))
        attacked.update(
            loris_open_at_start=opened,
            loris_open_at_end=open_now.value,
            server_cpu_percent=cpu,
            loris_closed_by_server=closed_by_server.value,
        )
        stop.set()
        attack.join(10)
    finally:
        server.stop()
    return {"idle": idle, "loris": attacked, "server_log": str(log)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--loris", type=int, default=500, help="slow connections (default 500)")
    p.add_argument("--seconds", type=float, default=15, help="measurement time per phase (default 15)")
    p.add_argument("--interval", type=float, default=2, help="seconds between a loris' header lines (default 2)")
    a = p.parse_args()
    r = measure(a.repo, a.loris, a.seconds, a.interval)
    idle, loris = r["idle"], r["loris"]
    print(f"{'phase':<28}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'idle':<28}{idle['requests']:>9}{idle['p50_ms']:>9.3f}{idle['p99_ms']:>9.3f}")
    print(
        f"{f'{a.loris} slow-loris connections':<28}{loris['requests']:>9}{loris['p50_ms']:>9.3f}{loris['p99_ms']:>9.3f}"
    )
    print(
        f"p99 ratio {loris['p99_ms'] / idle['p99_ms']:.2f} (goal <= 2); loris connections open at start "
        f"{loris['loris_open_at_start']}, at end {loris['loris_open_at_end']}, closed by the server "
        f"{loris['loris_closed_by_server']}; server CPU with only the loris connections open "
        f"{loris['server_cpu_percent']:.1f}% of a core; server log {r['server_log']}"
    )


if __name__ == "__main__":
    main()
