"""`modelyard bench`: every server in turn on one machine, in one run, with one load generator per kind of
measurement, repeated in rounds (each round starts every server afresh, in the same order) so drift on a noisy
machine shows up as spread instead of as a difference between servers."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadtests.bench import grpc_load, load
from loadtests.bench.load import CONNECTIONS
from loadtests.bench.servers import Contender, Setup, contenders
from loadtests.process import ServerNotReady, ServerProcess, free_port


@dataclass
class Options:
    p99_target_ms: float = 50.0
    rate: float = 1000.0
    step_s: float = 3.0
    rate_s: float = 8.0
    rounds: int = 3
    server_cpus: set[int] | None = None
    loadgen_cpus: set[int] | None = None
    ready_timeout_s: float = 180.0
    connections: tuple[int, ...] = CONNECTIONS


@dataclass
class Measurement:
    """One server in one round."""

    sweep: list[load.Point] = field(default_factory=list)
    fixed_rate: load.RatePoint | None = None
    mean_batch_rows: float | None = None
    error: str | None = None

    def best(self, target_ms: float) -> load.Point | None:
        """The highest throughput among error-free runs whose p99 met the target."""
        ok = [p for p in self.sweep if p.p99_ms <= target_ms and p.errors == 0]
        return max(ok, key=lambda p: p.rps) if ok else None


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """Servers on the first half of this process's CPUs, load generators on the rest (None: cannot pin)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


class _Cpu:
    """CPU seconds used by a process and its children (LitServe and BentoML run their model in workers)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)

    def seconds(self) -> float:
        total = 0.0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total


def _metered(cpu: _Cpu, fn: Callable[[], load.Point | load.RatePoint], seconds: float):
    c0, t0 = cpu.seconds(), time.perf_counter()
    point = fn()
    point.cpu_cores = round((cpu.seconds() - c0) / max(time.perf_counter() - t0, seconds), 2)
    return point


def _mean_batch_rows(url: str) -> float | None:
    """modelyard's own /metrics: rows per batch it formed (sum / count of modelyard_batch_size_rows)."""
    import urllib.request

    try:
        text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    except OSError:
        return None
    total = sum(float(v) for v in re.findall(r"^modelyard_batch_size_rows_sum\{[^}]*\} (\S+)", text, re.M))
    count = sum(float(v) for v in re.findall(r"^modelyard_batch_size_rows_count\{[^}]*\} (\S+)", text, re.M))
    return round(total / count, 2) if count else None


def _generators(c: Contender, setup: Setup, bodies: dict[str, Path], opts: Options, port: int, grpc_port: int):
    """(where it listens, one sweep point at N connections, the fixed-rate run) for ``c``'s protocol: wrk and k6
    for REST, :mod:`loadtests.bench.grpc_load` for gRPC, every one on the load-generator CPUs."""
    b = bodies[c.protocol]
    if c.protocol == "v2-grpc":
        target = f"127.0.0.1:{grpc_port}"
        return (
            target,
            lambda n: grpc_load.closed(target, b, n, opts.step_s, opts.loadgen_cpus),
            lambda: grpc_load.fixed_rate(target, b, opts.rate, opts.rate_s, opts.loadgen_cpus),
        )
    url = f"http://127.0.0.1:{port}{c.route(setup)}"
    return (
        url,
        lambda n: load.wrk(url, b, n, opts.step_s, opts.loadgen_cpus),
        lambda: load.k6(url, b, opts.rate, opts.rate_s, opts.loadgen_cpus),
    )


def _wait_ready(server: ServerProcess, c: Contender, target: str, bodies: dict[str, Path], timeout: float) -> None:
    """Until the server answers the first body of its protocol (REST: 200; gRPC: an answered ModelInfer)."""
    if c.protocol != "v2-grpc":
        server.wait_ready(target, timeout, body=bodies[c.protocol].read_text().splitlines()[0].encode())
        return
    try:
        grpc_load.wait_ready(target, bodies[c.protocol], timeout, alive=lambda: server.proc.poll() is None)
    except load.GeneratorError as e:
        if server.proc.poll() is not None:
            raise ServerNotReady(
                f"server exited with code {server.proc.returncode} before it was ready; "
                f"log: {server.log_path}\n{server.tail()}"
            ) from None
        raise ServerNotReady(f"{e}; log: {server.log_path}\n{server.tail()}") from None


def measure(
    c: Contender,
    setup: Setup,
    bodies: dict[str, Path],
    opts: Options,
    log_dir: Path,
    say: Callable[[str], None],
    port: int,
    grpc_port: int = 0,
) -> Measurement:
    """``c`` started on ``port`` (and ``grpc_port``), swept and run at the fixed rate with its protocol's
    bodies (``bodies``: {protocol: file}), then stopped."""
    m = Measurement()
    server = ServerProcess(c.argv, log_dir / f"{c.key}.log", port=port, env=c.env, cpus=opts.server_cpus)
    target, point, fixed = _generators(c, setup, bodies, opts, port, grpc_port)
    try:
        _wait_ready(server, c, target, bodies, opts.ready_timeout_s)
        cpu = _Cpu(server.pid)
        if c.protocol == "v2-grpc":  # warm-up, not recorded
            grpc_load.closed(target, bodies[c.protocol], 8, 2, opts.loadgen_cpus)
        else:
            load.wrk(target, bodies[c.protocol], 8, 2, opts.loadgen_cpus)
        for n in opts.connections:
            p = _metered(cpu, lambda: point(n), opts.step_s)
            m.sweep.append(p)
            say(
                f"  {c.key:<20} {n:>4} connections: {p.rps:>9,.0f} req/s  p50 {p.p50_ms:7.2f} ms  "
                f"p99 {p.p99_ms:7.2f} ms  errors {p.errors}  cpu {p.cpu_cores:.2f}"
            )
            if p.p99_ms > 2 * opts.p99_target_ms or (p.errors and p.errors > 0.01 * p.requests):
                break  # more connections only queue longer
        m.fixed_rate = _metered(cpu, fixed, opts.rate_s)
        r = m.fixed_rate
        say(
            f"  {c.key:<20} at {opts.rate:,.0f} req/s: p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms  "
            f"failed {r.failed}  dropped {r.dropped}"
        )
        if c.role == "modelyard":
            m.mean_batch_rows = _mean_batch_rows(f"http://127.0.0.1:{port}")
    except (ServerNotReady, load.GeneratorError) as e:
        m.error = str(e).splitlines()[0]
        say(f"  [red]{c.key}: {m.error}[/red]")
    finally:
        server.stop(timeout=15)
    return m


def machine(setup: Setup, opts: Options) -> dict:
    cpu_model = ""
    try:
        cpu_model = next(
            l.split(":", 1)[1].strip()
            for l in Path("/proc/cpuinfo").read_text().splitlines()
            if l.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu_model = platform.processor()
    versions = {}
    for py, pkgs in (
        (sys.executable, ["onnxruntime-gpu", "fastapi", "uvicorn", "starlette", "orjson", "grpcio", "protobuf"]),
        (
            str(setup.peers_python or ""),
            ["litserve", "bentoml", "mlserver", "onnxruntime-gpu", "fastapi", "grpcio", "protobuf"],
        ),
    ):
        if not py:
            continue
        code = (
            "import importlib.metadata as m, json; out = {}\n"
            f"for p in {pkgs!r}:\n"
            "    try: out[p] = m.version(p)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))"
        )
        r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            versions.update(
                {(k if py == sys.executable else f"{k} (peers)"): v for k, v in json.loads(r.stdout).items()}
            )
    return {
        "cpu": cpu_model,
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "server_cpus": sorted(opts.server_cpus) if opts.server_cpus else "unpinned",
        "loadgen_cpus": sorted(opts.loadgen_cpus) if opts.loadgen_cpus else "unpinned",
        "wrk": load.tool_version("wrk"),
        "k6": load.tool_version("k6"),
        "versions": versions,
    }


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports."""
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


def run_bench(
    setup: Setup, bodies: dict[str, Path], keys: list[str], opts: Options, out: Path, say: Callable[[str], None]
) -> dict:
    """Every server in ``keys``, ``opts.rounds`` times; returns the raw results. ``bodies``: {protocol: file}."""
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="logs-", dir=out))
    results: dict[str, list[Measurement]] = {k: [] for k in keys}
    for r in range(opts.rounds):
        say(f"[bold]round {r + 1}/{opts.rounds}[/bold]")
        port, grpc_port = free_ports(2)
        for c in contenders(setup, port, keys, grpc_port):
            results[c.key].append(measure(c, setup, bodies, opts, logs, say, port, grpc_port))
    return results


def summarise(values: list[float]) -> dict | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }
