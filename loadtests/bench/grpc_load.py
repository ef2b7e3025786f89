"""The gRPC load generator of `modelyard bench`: KServe V2 ``ModelInfer`` calls, with the same two measurements,
and the same outputs, as the HTTP ones (:mod:`loadtests.bench.load`):

* :func:`closed` (like ``wrk``): N calls in flight, each followed by the next as soon as it is answered, for a
  fixed time; throughput, p50/p99 and errors -> :class:`~loadtests.bench.load.Point`;
* :func:`fixed_rate` (like k6's ``constant-arrival-rate``): calls started on a fixed schedule whether or not
  earlier ones were answered (open loop), at most as many in flight as k6 would have VUs; a call due while that
  many are in flight is not sent and counted as dropped -> :class:`~loadtests.bench.load.RatePoint`.

The requests are serialized ``ModelInferRequest`` messages read from a file (:mod:`loadtests.bench.bodies`) and
sent as bytes, and the answers are kept as bytes (a call with an OK status and a non-empty answer succeeds), so
the client does no protobuf work per call. It runs in worker processes (``python -m loadtests.bench.grpc_load``),
one per load-generator CPU (at most one per call in flight), each pinned to its CPU as wrk and k6 are, with one
HTTP/2 connection each (as ghz does by default); latencies are merged across workers before taking percentiles.
Latency is measured from sending a call to its answer, as wrk and k6 measure it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadtests.bench.bodies import read_records
from loadtests.bench.load import GeneratorError, Point, RatePoint

METHOD = "/inference.GRPCInferenceService/ModelInfer"
TIMEOUT_S = 10.0
"""Per-call deadline, as wrk's ``--timeout 10s`` and k6's ``timeout: '10s'``."""
ROOT = Path(__file__).resolve().parents[2]


def max_in_flight(rate: float) -> int:
    """The most calls in flight at a fixed rate: k6's ``maxVUs`` in :mod:`loadtests.bench.load` (4 x preallocated)."""
    return 4 * max(20, int(rate // 20))


@dataclass
class WorkerResult:
    sent: int = 0
    completed: int = 0
    errors: int = 0
    dropped: int = 0
    elapsed_s: float = 0.0
    first_error: str | None = None
    latencies_ns: np.ndarray | None = None


def _channel(target: str):
    import grpc

    # a channel of its own (not the process-wide subchannel pool), so each worker holds its own connection
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
        ],
    )


def _describe(e: BaseException) -> str:
    code = getattr(e, "code", None)
    details = getattr(e, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()}"
    return f"{type(e).__name__}: {e}"


async def _wait_until(t_wall: float) -> None:
    delay = t_wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _timed(call, msg: bytes, r: WorkerResult, lat: list[int]) -> None:
    """One call: its latency into ``lat``, or an error (the first one described) into ``r``."""
    import grpc

    s = time.perf_counter_ns()
    try:
        answer = await call(msg, timeout=TIMEOUT_S)
    except (grpc.aio.AioRpcError, asyncio.TimeoutError) as e:
        r.errors += 1
        r.first_error = r.first_error or _describe(e)
        return
    if answer:
        lat.append(time.perf_counter_ns() - s)
    else:
        r.errors += 1
        r.first_error = r.first_error or "empty answer"


async def run_closed(
    target: str, msgs: list[bytes], concurrency: int, seconds: float, offset: int = 0, start_at: float = 0.0
) -> WorkerResult:
    """``concurrency`` loops, each sending its next message when the last is answered, until ``seconds`` pass."""
    r = WorkerResult()
    lat: list[int] = []
    async with _channel(target) as ch:
        await asyncio.wait_for(ch.channel_ready(), TIMEOUT_S)
        call = ch.unary_unary(METHOD)  # no (de)serializers: bytes in, bytes out
        await _wait_until(start_at)
        clock = time.perf_counter_ns
        t0 = clock()
        deadline = t0 + int(seconds * 1e9)
        n = len(msgs)

        async def loop(k: int) -> None:
            while clock() < deadline:
                await _timed(call, msgs[k % n], r, lat)
                k += concurrency

        await asyncio.gather(*(loop(offset + i) for i in range(concurrency)))
        r.elapsed_s = (clock() - t0) / 1e9
    r.completed, r.sent = len(lat), len(lat) + r.errors
    r.latencies_ns = np.asarray(lat, dtype=np.int64)
    return r


async def run_open(
    target: str, msgs: list[bytes], rate: float, seconds: float, limit: int, offset: int = 0, start_at: float = 0.0
) -> WorkerResult:
    """Calls started every ``1 / rate`` s for ``seconds`` whatever became of earlier ones; a call due while
    ``limit`` are in flight is dropped (not sent)."""
    r = WorkerResult()
    lat: list[int] = []
    pending: set[asyncio.Task] = set()
    async with _channel(target) as ch:
        await asyncio.wait_for(ch.channel_ready(), TIMEOUT_S)
        call = ch.unary_unary(METHOD)
        await _wait_until(start_at)
        clock = time.perf_counter_ns
        n, total = len(msgs), max(1, round(rate * seconds))

        t0 = clock()
        for i in range(total):
            due = t0 + int(i * 1e9 / rate)
            now = clock()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
            if len(pending) >= limit:
                r.dropped += 1
                continue
            task = asyncio.ensure_future(_timed(call, msgs[(offset + i) % n], r, lat))
            pending.add(task)
            task.add_done_callback(pending.discard)
            r.sent += 1
        if pending:
            await asyncio.wait(list(pending))
        r.elapsed_s = max((clock() - t0) / 1e9, seconds)
    r.completed = len(lat)
    r.latencies_ns = np.asarray(lat, dtype=np.int64)
    return r


# ------------------------------------------------------------------ worker processes


def _worker_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one gRPC load worker (started by loadtests.bench.grpc_load)")
    p.add_argument("mode", choices=("closed", "open"))
    p.add_argument("--target", required=True)
    p.add_argument("--bodies", required=True, type=Path)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--limit", type=int, default=1)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--start-at", type=float, default=0.0)
    p.add_argument("--latencies", required=True, type=Path)
    p.add_argument("--cpus", default="", help="comma-separated CPUs to pin this worker to")
    a = p.parse_args(argv)
    if a.cpus:
        os.sched_setaffinity(0, {int(c) for c in a.cpus.split(",")})
    msgs = read_records(a.bodies)
    gc.collect()
    gc.freeze()  # no collector pauses in the client while it measures
    try:
        if a.mode == "closed":
            r = asyncio.run(run_closed(a.target, msgs, a.concurrency, a.seconds, a.offset, a.start_at))
        else:
            r = asyncio.run(run_open(a.target, msgs, a.rate, a.seconds, a.limit, a.offset, a.start_at))
    except Exception as e:  # noqa: BLE001 - connection never ready, bad target: said on stdout for the parent
        print("BENCH " + json.dumps({"failed": _describe(e)}), flush=True)
        return 1
    r.latencies_ns.tofile(a.latencies)
    print(
        "BENCH "
        + json.dumps(
            {
                "sent": r.sent,
                "completed": r.completed,
                "errors": r.errors,
                "dropped": r.dropped,
                "elapsed_s": r.elapsed_s,
                "first_error": r.first_error,
            }
        ),
        flush=True,
    )
    return 0


def workers_for(cpus: set[int] | None, most: int) -> list[set[int] | None]:
    """One CPU set per worker: one worker per load-generator CPU, at most ``most``; unpinned: one worker."""
    if not cpus:
        return [None]
    return [{c} for c in sorted(cpus)[: max(1, most)]]


def _run_workers(
    mode: str,
    target: str,
    bodies: Path,
    seconds: float,
    cpus: set[int] | None,
    most: int,
    per_worker: Callable[[int, int], list[str]],
) -> list[WorkerResult]:
    pins = workers_for(cpus, most)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    # several workers start together, once each has had time to start and connect; one starts when ready
    start_at = time.time() + 0.5 + 0.1 * len(pins) if len(pins) > 1 else 0.0
    with tempfile.TemporaryDirectory(prefix="grpc-load-") as d:
        procs = []
        for i, pin in enumerate(pins):
            lat = Path(d) / f"w{i}.i64"
            argv = [
                sys.executable,
                "-m",
                "loadtests.bench.grpc_load",
                mode,
                "--target",
                target,
                "--bodies",
                str(bodies),
                "--seconds",
                str(seconds),
                "--start-at",
                repr(start_at),
                "--latencies",
                str(lat),
                "--cpus",
                ",".join(map(str, sorted(pin or ()))),
                *per_worker(i, len(pins)),
            ]
            # pinned by the worker itself: no preexec_fn, so no fork() of a process that may run gRPC threads
            procs.append(
                (
                    subprocess.Popen(
                        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
                    ),
                    lat,
                )
            )
        results = []
        for proc, lat in procs:
            try:
                out, err = proc.communicate(timeout=seconds + TIMEOUT_S + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            line = next((l for l in out.splitlines() if l.startswith("BENCH ")), None)
            if line is None:
                raise GeneratorError(f"gRPC load worker failed (exit {proc.returncode}): {(err or out).strip()[-400:]}")
            rec = json.loads(line[6:])
            if "failed" in rec:
                raise GeneratorError(f"gRPC load on {target}: {rec['failed']}")
            results.append(
                WorkerResult(
                    rec["sent"],
                    rec["completed"],
                    rec["errors"],
                    rec["dropped"],
                    rec["elapsed_s"],
                    rec["first_error"],
                    np.fromfile(lat, dtype=np.int64),
                )
            )
    return results


def _merged(results: list[WorkerResult], target: str) -> tuple[np.ndarray, int, int, float]:
    lat = np.concatenate([r.latencies_ns for r in results]) / 1e6
    errors = sum(r.errors for r in results)
    if lat.size == 0:
        first = next((r.first_error for r in results if r.first_error), "no call was answered")
        raise GeneratorError(f"gRPC load on {target}: no call succeeded ({errors} failed; first: {first})")
    return lat, errors, sum(r.completed for r in results), max(r.elapsed_s for r in results)


def closed(target: str, bodies: Path, connections: int, seconds: float, cpus: set[int] | None = None) -> Point:
    """``connections`` calls in flight (split over the workers) for ``seconds``: a sweep point, as :func:`load.wrk`."""

    def per_worker(i: int, k: int) -> list[str]:
        share = connections // k + (1 if i < connections % k else 0)
        return ["--concurrency", str(share), "--offset", str(i * 7919)]

    results = _run_workers("closed", target, bodies, seconds, cpus, connections, per_worker)
    lat, errors, done, elapsed = _merged(results, target)
    return Point(
        connections,
        round(done / elapsed, 1),
        float(np.percentile(lat, 50)),
        float(np.percentile(lat, 99)),
        errors,
        done + errors,
    )


def fixed_rate(target: str, bodies: Path, rate: float, seconds: float, cpus: set[int] | None = None) -> RatePoint:
    """``rate`` calls a second (split over the workers) for ``seconds``, open loop, as :func:`load.k6`."""
    k = len(workers_for(cpus, math.ceil(rate)))

    def per_worker(i: int, k: int) -> list[str]:
        return ["--rate", repr(rate / k), "--limit", str(max(1, max_in_flight(rate) // k)), "--offset", str(i * 7919)]

    results = _run_workers("open", target, bodies, seconds, cpus, k, per_worker)
    lat, errors, done, elapsed = _merged(results, target)
    return RatePoint(
        rate,
        round((done + errors) / elapsed, 1),
        float(np.percentile(lat, 50)),
        float(np.percentile(lat, 99)),
        errors,
        sum(r.dropped for r in results),
    )


def probe(target: str, bodies: Path, timeout: float = 5.0) -> str | None:
    """One call with the first body: None when it is answered, else why not (for readiness checks)."""
    import grpc

    msg = read_records(bodies)[0]
    with grpc.insecure_channel(target) as ch:
        try:
            answer = ch.unary_unary(METHOD)(msg, timeout=timeout)
        except grpc.RpcError as e:
            return _describe(e)
    return None if answer else "empty answer"


def wait_ready(target: str, bodies: Path, timeout: float, alive=lambda: True) -> None:
    """Wait until a ModelInfer call with the first body is answered; GeneratorError naming the last failure."""
    deadline, why = time.monotonic() + timeout, "not tried"
    while time.monotonic() < deadline and alive():
        why = probe(target, bodies, timeout=2.0)
        if why is None:
            return
        time.sleep(0.2)
    raise GeneratorError(f"gRPC endpoint {target} not ready after {timeout:.0f}s: {why}")


if __name__ == "__main__":
    sys.exit(_worker_main())
