"""Instructions per request, two checkouts of modelyard in turn: the deterministic before/after measure of the
REST fast path, for machines where time-based measures spread more than the change they are to measure.

Each checkout's ``modelyard serve`` runs under valgrind's cachegrind (no cache simulation, only the instruction
count) twice: answering the warm-up requests, then those and ``--requests`` more one-row IMDB ``:predict``
requests, sent one at a time on one kept-alive connection. The difference of the two totals, divided by the requests, is the instructions the server
spends per request: HTTP parsing, the middleware, the data plane, the model and the answer. It counts work, not time
(a cache miss costs one instruction here), and it hardly depends on what else runs on the machine. Batches run
on the event loop in both (``MODELYARD_INLINE_INFERENCE_MAX_MS=1000``): under valgrind the model is slow enough
that the server would otherwise hand each batch to its inference thread, and the count would then include the
threads' waiting, which depends on timing; for the same reason numpy's OpenBLAS runs one thread (its idle threads
spin). Both runs first answer the same warm-up requests.

    git worktree add /tmp/before <commit>
    python -m loadtests.bench.instr_ab --before /tmp/before --repo models --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from loadtests.bench.cpu_ab import imdb_bodies
from loadtests.process import ROOT, ServerProcess, free_port


WARM_UP = 300
"""Requests both runs answer first: what the first requests do once (lazy imports, compiled patterns, caches) is in
both totals and cancels out."""


def instructions(root: Path, repo: Path, bodies: list[bytes], requests: int, log: Path) -> int:
    """Instructions of a whole server process (start, :data:`WARM_UP` + ``requests`` answers, drain) of the
    checkout at ``root``."""
    port = free_port()
    grpc_off = ["--grpc-port", "0"] if "grpc_port" in (root / "modelyard" / "settings.py").read_text() else []
    argv = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", sys.executable,
            "-m", "modelyard", "serve", "--repo", str(repo), "--port", str(port), "--poll-interval-s", "0",
            "--variant", "onnx_fp32", "--device", "cpu", *grpc_off]
    server = ServerProcess(argv, log, port=port, cwd=root, env={
        "MODELYARD_THREADS": "1", "MODELYARD_ACCESS_LOG": "false", "PYTHONPATH": str(root), "PYTHONHASHSEED": "0",
        "MODELYARD_INLINE_INFERENCE_MAX_MS": "1000", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    try:
        server.wait_ready(server.url + "/v2/health/ready", 900)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for i in range(WARM_UP + requests):
            conn.request("POST", "/v1/models/imdb:predict", bodies[i % len(bodies)],
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"{root}: request {i} answered {r.status}")
        conn.close()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(600)
    finally:
        server.stop()
    found = re.findall(r"I\s+refs:\s+([\d,]+)", log.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"no instruction count in {log}")
    return int(found[-1].replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.instr_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. a git worktree)")
    p.add_argument("--after", type=Path, default=ROOT)
    p.add_argument("--repo", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--requests", type=int, default=4000)
    a = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        bodies = imdb_bodies(a.repo, a.data_dir, Path(d)).read_bytes().splitlines()
        per_request = {}
        for name, root in (("before", a.before), ("after", a.after)):
            idle, busy = (instructions(root.resolve(), a.repo.resolve(), bodies, n, Path(d) / f"{name}-{n}.log")
                          for n in (0, a.requests))
            per_request[name] = (busy - idle) / a.requests
            print(f"{name}: {idle:,} instructions idle, {busy:,} with {a.requests:,} requests: "
                  f"{per_request[name]:,.0f} per request", flush=True)
    b, f = per_request["before"], per_request["after"]
    print(f"instructions per one-row IMDB :predict: before {b:,.0f}, after {f:,.0f}, change {100 * (f / b - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
