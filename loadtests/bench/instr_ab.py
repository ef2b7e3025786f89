"""Instructions per request, two checkouts of modelyard in turn: the deterministic before/after measure of the
REST fast path, for machines where time-based measures spread more than the change they are to measure.

Each checkout's ``modelyard serve`` runs under valgrind's callgrind. After the warm-up requests, the counters are
zeroed and dumped around two windows (``callgrind_control``): ``--requests`` one-row IMDB ``:predict`` requests sent
one at a time on one kept-alive connection, then an idle window of the same length. The first count less the
second, divided by the requests, is the instructions the server spends per request: HTTP parsing, the middleware,
the data plane, the model and the answer; start-up, model loading and the readiness polls are never counted, and
the idle window takes out the server's own ticks and timers (about 320,000 instructions a second under valgrind).
It counts work, not time (a cache miss costs one instruction here), and it hardly depends on what else runs on the
machine. Batches run on the event loop in both (``MODELYARD_INLINE_INFERENCE_MAX_MS=1000``): under valgrind the
model is slow enough that the server would otherwise hand each batch to its inference thread, and the count would
then include the threads' waiting, which depends on timing; for the same reason numpy's OpenBLAS runs one thread
(its idle threads spin). Both servers first answer the same warm-up requests.

    git worktree add /tmp/before <commit>
    python -m loadtests.bench.instr_ab --before /tmp/before --repo models --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadtests.bench.cpu_ab import imdb_bodies
from loadtests.process import ROOT, ServerProcess, free_port, serve_argv


WARM_UP = 300
"""Requests both runs answer first: what the first requests do once (lazy imports, compiled patterns, caches) is in
both totals and cancels out."""


def instructions(root: Path, repo: Path, bodies: list[bytes], requests: int, out: Path) -> float:
    """Instructions per request of the checkout at ``root``'s server: the request window's count less an idle
    window's of the same length (see the module's docstring)."""
    port = free_port()
    callgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"]
    argv = callgrind + serve_argv(repo, port, root=root)
    server = ServerProcess(
        argv,
        out.with_suffix(".log"),
        port=port,
        cwd=root,
        env={
            "MODELYARD_THREADS": "1",
            "MODELYARD_ACCESS_LOG": "false",
            "PYTHONPATH": str(root),
            "PYTHONHASHSEED": "0",
            "MODELYARD_INLINE_INFERENCE_MAX_MS": "1000",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        },
    )
    try:
        server.wait_ready(server.url + "/v2/health/ready", 900)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        _send(conn, bodies, range(WARM_UP), root)
        busy, seconds = _window(server.pid, out, lambda: _send(conn, bodies, range(WARM_UP, WARM_UP + requests), root))
        idle, _ = _window(server.pid, out, lambda: time.sleep(seconds))
        conn.close()
        server.proc.send_signal(signal.SIGINT)
        server.proc.wait(600)
    finally:
        server.stop()
    return (busy - idle) / requests


def _send(conn: http.client.HTTPConnection, bodies: list[bytes], numbers: range, root: Path) -> None:
    for i in numbers:
        conn.request("POST", "/v1/models/imdb:predict", bodies[i % len(bodies)], {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{root}: request {i} answered {r.status}")


def _window(pid: int, out: Path, work) -> tuple[int, float]:
    """The server's instructions while ``work`` runs (callgrind's counters zeroed before it, dumped after it),
    and how long it ran."""
    _control(pid, "--zero")
    t0 = time.monotonic()
    work()
    seconds = time.monotonic() - t0
    _control(pid, "--dump")
    dumps = sorted(out.parent.glob(f"{out.name}.{pid}*"), key=lambda f: f.stat().st_mtime_ns)
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump beside {out}")
    for line in dumps[-1].read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]), seconds
    raise RuntimeError(f"no instruction total in {dumps[-1]}")


def _control(pid: int, *args: str) -> None:
    done = subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control {' '.join(args)} {pid}: {done.stderr or done.stdout}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.instr_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. a git worktree)")
    p.add_argument("--after", type=Path, default=ROOT)
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=1, help="runs of each server, in turn; the medians are compared")
    a = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind and callgrind_control (apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        bodies = imdb_bodies(a.repo, a.data_dir, Path(d)).read_bytes().splitlines()
        per_request: dict[str, list[float]] = {"before": [], "after": []}
        for r in range(a.rounds):
            for name, root in (("before", a.before), ("after", a.after)):
                n = instructions(root.resolve(), a.repo.resolve(), bodies, a.requests, Path(d) / f"{name}-{r}")
                per_request[name].append(n)
                print(f"round {r + 1}, {name}: {n:,.0f} instructions per request", flush=True)
    b, f = (statistics.median(per_request[k]) for k in ("before", "after"))
    print(
        f"instructions per one-row IMDB :predict (median of {a.rounds}): before {b:,.0f}, after {f:,.0f}, "
        f"change {100 * (f / b - 1):+.1f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
