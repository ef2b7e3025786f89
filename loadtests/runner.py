"""Headless Locust runs with a report: Locust's CSVs and HTML, a PNG of throughput and latency over time,
a summary (table and JSON), and SLO checks. Optionally starts ``modelyard serve`` on a free loopback port.

Everything here is bounded in time: the server must be ready within ``ready_timeout_s``, Locust runs for
the given duration (``-t``) and is killed if it overruns by ``grace_s``, and the server is stopped with
SIGTERM (then SIGKILL) afterwards.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadtests.hosts import check_loopback
from loadtests.process import ServerNotReady, ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
PREFIX = "locust"


class LoadTestError(RuntimeError):
    """A run that could not be made (bad option, server never ready, Locust crashed)."""


def parse_duration(text: str) -> float:
    """Locust's ``-t`` syntax (``90``, ``30s``, ``2m``, ``1h30m``) -> seconds."""
    text = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise LoadTestError(f"duration {text!r}: use seconds or e.g. 30s, 2m, 1h30m")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


# ------------------------------------------------------------------ server
def start_modelyard(
    repo: Path | None,
    log_path: Path,
    extra_args: list[str] | None = None,
    env: dict | None = None,
    grpc_port: int = 0,
    cpus: set[int] | None = None,
) -> ServerProcess:
    """``modelyard serve`` on 127.0.0.1:<free port>, gRPC on ``grpc_port`` (0: none; the load test speaks REST),
    pinned to ``cpus`` when given."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "modelyard",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
    ]
    if repo is not None:
        args += ["--repo", str(repo)]
    return ServerProcess(args + list(extra_args or []), log_path, port=port, env=env, cpus=cpus)


# ------------------------------------------------------------------ results
@dataclass
class Row:
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    avg_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass
class Result:
    host: str
    users: int
    spawn_rate: float
    duration_s: float
    models: list[str]
    rows: list[Row]
    total: Row
    files: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    locust_rc: int | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict:
        d = asdict(self)
        d["total"]["error_rate"] = self.total.error_rate
        d["ok"] = self.ok
        return d


def _num(v: str) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def read_stats(path: Path) -> tuple[list[Row], Row]:
    """Locust's ``*_stats.csv`` -> per-request-name rows and the Aggregated row."""
    rows, total = [], None
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = Row(
                name=r["Name"],
                requests=int(r["Request Count"]),
                failures=int(r["Failure Count"]),
                rps=_num(r["Requests/s"]) or 0.0,
                p50_ms=_num(r.get("50%")),
                p95_ms=_num(r.get("95%")),
                p99_ms=_num(r.get("99%")),
                max_ms=_num(r.get("Max Response Time")),
                avg_ms=_num(r.get("Average Response Time")),
            )
            if r["Name"] == "Aggregated":
                total = row
            else:
                rows.append(row)
    if total is None:
        total = Row("Aggregated", 0, 0, 0.0, None, None, None, None, None)
    return rows, total


def read_history(path: Path) -> dict[str, list[float]]:
    """The Aggregated rows of ``*_stats_history.csv``: elapsed seconds, users, req/s, fail/s, p50/p95/p99."""
    out = {k: [] for k in ("t", "users", "n", "nf", "rps", "fps", "p50", "p95", "p99")}
    if not path.is_file():
        return out
    t0 = None
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r.get("Name") != "Aggregated":
                continue
            ts = _num(r.get("Timestamp"))
            if ts is None:
                continue
            t0 = ts if t0 is None else t0
            out["t"].append(ts - t0)
            out["users"].append(_num(r.get("User Count")) or 0)
            out["n"].append(_num(r.get("Total Request Count")) or 0.0)
            out["nf"].append(_num(r.get("Total Failure Count")) or 0.0)
            for p, col in (("p50", "50%"), ("p95", "95%"), ("p99", "99%")):
                out[p].append(_num(r.get(col)) if _num(r.get(col)) else float("nan"))
    # throughput from the cumulative counts (Locust's own Requests/s column is a lagging window)
    for i, t in enumerate(out["t"]):
        dt = t - out["t"][i - 1] if i else 0.0
        out["rps"].append((out["n"][i] - out["n"][i - 1]) / dt if dt > 0 else 0.0)
        out["fps"].append((out["nf"][i] - out["nf"][i - 1]) / dt if dt > 0 else 0.0)
    return out


def plot_history(hist: dict[str, list[float]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    ax1.plot(hist["t"], hist["rps"], label="requests/s", color="tab:blue")
    if any(hist["fps"]):
        ax1.plot(hist["t"], hist["fps"], label="failures/s", color="tab:red")
    ax1.set_ylabel("throughput (req/s)")
    ax1.grid(alpha=0.3)
    if hist["users"]:
        axu = ax1.twinx()
        axu.step(hist["t"], hist["users"], where="post", color="tab:gray", alpha=0.5, label="users")
        axu.set_ylabel("users")
        h1, l1 = ax1.get_legend_handles_labels()
        h2, l2 = axu.get_legend_handles_labels()
        ax1.legend(h1 + h2, l1 + l2, loc="lower right")
    for p, c in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
        ax2.plot(hist["t"], hist[p], label=p, color=c)
    ax2.set_ylabel("latency (ms)")
    ax2.set_xlabel("elapsed (s)")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def check_slos(total: Row, slo_p99_ms: float | None, max_error_rate: float | None) -> list[str]:
    out = []
    if total.requests == 0:
        out.append("no requests completed")
        return out
    if max_error_rate is not None and total.error_rate > max_error_rate:
        out.append(
            f"error rate {total.error_rate:.2%} ({total.failures}/{total.requests}) is above "
            f"--max-error-rate {max_error_rate:.2%}"
        )
    if slo_p99_ms is not None and (total.p99_ms is None or total.p99_ms > slo_p99_ms):
        got = "unknown" if total.p99_ms is None else f"{total.p99_ms:.0f} ms"
        out.append(f"p99 latency {got} is above --slo-p99-ms {slo_p99_ms:g} ms")
    return out


# ------------------------------------------------------------------ the run
def run_locust(
    host: str,
    report: Path,
    users: int,
    spawn_rate: float,
    duration: str,
    models: list[str] | None,
    env: dict | None = None,
    grace_s: float = 60.0,
    locustfile: Path = LOCUSTFILE,
    log=None,
) -> tuple[int, Path]:
    """Headless Locust against ``host`` (loopback only); returns (exit code, log path)."""
    check_loopback(host)
    secs = parse_duration(duration)
    report.mkdir(parents=True, exist_ok=True)
    log_path = report / "locust.log"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        f"{secs:g}s",
        "--stop-timeout",
        "5",
        "--host",
        host.rstrip("/"),
        "--csv",
        str(report / PREFIX),
        "--csv-full-history",
        "--html",
        str(report / "report.html"),
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
        "--logfile",
        str(log_path),
    ]
    full_env = {**os.environ, **(env or {})}
    if models:
        full_env["MODELYARD_LOAD_MODELS"] = ",".join(models)
    full_env.setdefault("PYTHONPATH", str(ROOT))
    out_path = report / "locust.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=secs + grace_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise LoadTestError(f"locust did not finish within {secs + grace_s:.0f}s; see {out_path}") from None
    return rc, out_path


def loadtest(
    host: str | None = None,
    start_server: bool = False,
    repo: Path | None = None,
    users: int = 8,
    spawn_rate: float = 4,
    duration: str = "60s",
    models: list[str] | None = None,
    report: Path = Path("loadtest-report"),
    slo_p99_ms: float | None = None,
    max_error_rate: float | None = 0.0,
    ready_timeout_s: float = 120,
    server_args: list[str] | None = None,
    env: dict | None = None,
) -> Result:
    if bool(host) == bool(start_server):
        raise LoadTestError("give exactly one of --host URL or --start-server")
    if host:
        check_loopback(host)
    models = [m.strip().lower() for m in (models or []) if m.strip()] or None
    report = Path(report)
    report.mkdir(parents=True, exist_ok=True)
    for old in report.glob(f"{PREFIX}_*.csv"):
        old.unlink()
    _check_payloads(models, env)
    server = None
    try:
        if start_server:
            server = start_modelyard(repo, report / "server.log", server_args, env)
            try:
                server.wait_ready(server.url + "/v2/health/ready", ready_timeout_s)
            except ServerNotReady as e:
                raise LoadTestError(str(e)) from None
            host = server.url
        rc, out_path = run_locust(host, report, users, spawn_rate, duration, models, env)
    finally:
        if server is not None:
            server.stop()
    stats = report / f"{PREFIX}_stats.csv"
    if not stats.is_file():
        tail = "\n".join(out_path.read_text(errors="replace").splitlines()[-15:])
        raise LoadTestError(f"locust exited with {rc} without writing {stats}:\n{tail}")
    rows, total = read_stats(stats)
    secs = parse_duration(duration)
    res = Result(
        host=host,
        users=users,
        spawn_rate=spawn_rate,
        duration_s=secs,
        models=models or ["imdb", "reuters", "boston"],
        rows=rows,
        total=total,
        locust_rc=rc,
    )
    hist = read_history(report / f"{PREFIX}_stats_history.csv")
    png = plot_history(
        hist,
        report / "latency_throughput.png",
        f"modelyard load test: {users} users, {secs:g}s, {', '.join(res.models)} ({host})",
    )
    res.files = {
        "stats": str(stats),
        "history": str(report / f"{PREFIX}_stats_history.csv"),
        "failures": str(report / f"{PREFIX}_failures.csv"),
        "html": str(report / "report.html"),
        "png": str(png),
        "summary": str(report / "summary.json"),
    }
    res.violations = check_slos(total, slo_p99_ms, max_error_rate)
    if rc not in (0, None) and not res.violations:
        res.violations.append(f"locust exited with code {rc}; see {out_path}")
    (report / "summary.json").write_text(json.dumps(res.to_json(), indent=2))
    return res


def _check_payloads(models: list[str] | None, env: dict | None) -> None:
    """Load the test-set samples once here, so a missing dataset is one clear error, not N user errors."""
    from loadtests import payloads

    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        for m in models or payloads.MODELS:
            if m not in payloads.MODELS:
                raise LoadTestError(f"unknown model '{m}'; expected some of {', '.join(payloads.MODELS)}")
            try:
                payloads.samples(m, 5)
            except Exception as e:  # noqa: BLE001 - DatasetError, OSError, ...
                raise LoadTestError(
                    f"cannot read {m} test samples from {payloads.data_dir()}: {e} "
                    f"(set MODELYARD_LOAD_DATA_DIR or MODELYARD_DATA_DIR)"
                ) from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
