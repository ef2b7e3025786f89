"""``modelyard loadtest``: Locust, headless, against a loopback server, with a report and SLO checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def loadtest(
    host: Annotated[
        Optional[str], typer.Option(help="server to load, loopback only (http://127.0.0.1:8000, localhost, [::1])")
    ] = None,
    start_server: Annotated[
        bool,
        typer.Option(
            "--start-server", help="start `modelyard serve` on a free loopback port for the run, stop it afterwards"
        ),
    ] = False,
    repo: Annotated[
        Optional[Path],
        typer.Option(
            help="with --start-server: model repository (default: serve's default, MODELYARD_REPO or ./models)"
        ),
    ] = None,
    users: Annotated[int, typer.Option("--users", "-u", min=1, help="concurrent Locust users")] = 8,
    spawn_rate: Annotated[float, typer.Option("--spawn-rate", "-r", min=0.1, help="users started per second")] = 4,
    duration: Annotated[
        Optional[str], typer.Option("--duration", "-t", help="run time: 30s, 2m, 1h30m (default 60s; with --soak 10m)")
    ] = None,
    models: Annotated[
        Optional[str],
        typer.Option(
            help="comma-separated models, optionally weighted: imdb,reuters or imdb=3,boston=1 (default all three)"
        ),
    ] = None,
    report: Annotated[
        Optional[Path],
        typer.Option(
            help="folder for Locust's CSVs, HTML report, PNG and "
            "summary.json (default loadtest-report; with --soak "
            "soak-report: soak.json, soak.png, logs)"
        ),
    ] = None,
    slo_p99_ms: Annotated[
        Optional[float], typer.Option(min=0, help="fail when the overall p99 latency is above this (ms)")
    ] = None,
    max_error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="fail when failures/requests is above this (0 = any failure fails)")
    ] = 0.0,
    ready_timeout: Annotated[
        float, typer.Option(min=1, help="with --start-server: seconds to wait for /v2/health/ready")
    ] = 120,
    soak: Annotated[
        bool,
        typer.Option(
            "--soak",
            help="a soak test: start the server on a copy of --repo, measure "
            "its capacity, hold an open-loop rate below it for --duration while new "
            "model versions are published, and watch failures, latency and RSS "
            "(k6; --users and --spawn-rate do not apply)",
        ),
    ] = False,
    soak_rate_fraction: Annotated[
        float,
        typer.Option(
            min=0.01, max=1, help="with --soak: the rate to hold, as a fraction of the capacity measured first"
        ),
    ] = 0.7,
    rate: Annotated[
        Optional[float],
        typer.Option(min=1, help="with --soak: the rate to hold (requests/s), instead of measuring the capacity"),
    ] = None,
    reload_every: Annotated[
        str, typer.Option(help="with --soak: publish a new version of every model this often (0: never)")
    ] = "30s",
    max_rss_drift: Annotated[
        float,
        typer.Option(
            min=0, help="with --soak: fail when the server's RSS at the end is more than this % above RSS at the start"
        ),
    ] = 5.0,
) -> None:
    """Load-test a modelyard server with Locust (real IMDB, Reuters and Boston test inputs, TF Serving REST and
    KServe V2), write a report, and exit 1 when an SLO is missed. With --soak: a long open-loop run with hot
    reloads that exits 1 on any failed request or RSS drift."""
    from loadtests.hosts import HostError
    from loadtests.runner import LoadTestError
    from loadtests.runner import loadtest as run

    env = {}
    names = None
    if models:
        names = [p.partition("=")[0].strip() for p in models.split(",") if p.strip()]
        if any("=" in p for p in models.split(",")):
            env["MODELYARD_LOAD_WEIGHTS"] = models
    if soak:
        _soak(
            host,
            repo,
            duration or "10m",
            models,
            report or Path("soak-report"),
            soak_rate_fraction,
            rate,
            reload_every,
            max_rss_drift,
            slo_p99_ms,
            ready_timeout,
        )
        return
    try:
        res = run(
            host=host,
            start_server=start_server,
            repo=repo,
            users=users,
            spawn_rate=spawn_rate,
            duration=duration or "60s",
            models=names,
            report=report or Path("loadtest-report"),
            slo_p99_ms=slo_p99_ms,
            max_error_rate=max_error_rate,
            ready_timeout_s=ready_timeout,
            env=env,
        )
    except (HostError, LoadTestError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(2) from None
    print_summary(res)
    if not res.ok:
        print(f"SLO missed: {'; '.join(res.violations)}", file=sys.stderr)
        raise typer.Exit(1)


def _soak(
    host, repo, duration, models, report, fraction, rate, reload_every, max_rss_drift, slo_p99_ms, ready_timeout
) -> None:
    from loadtests.runner import LoadTestError, parse_duration
    from loadtests.soak import SoakOptions, print_summary, soak

    try:
        if host:
            raise LoadTestError(
                "--soak starts its own server on a copy of --repo (it publishes versions into it "
                "and reads the server's memory); drop --host"
            )
        weights = None
        if models:
            weights = {}
            for part in filter(None, (p.strip() for p in models.split(","))):
                name, _, w = part.partition("=")
                try:
                    weights[name.strip().lower()] = int(w) if w else 1
                except ValueError:
                    raise LoadTestError(f"--models: weight of '{name}' must be an integer, got '{w}'") from None
        opts = SoakOptions(
            repo=repo or Path(os.environ.get("MODELYARD_REPO") or "models"),
            report=report,
            duration_s=parse_duration(duration),
            rate=rate,
            rate_fraction=fraction,
            reload_every_s=parse_duration(reload_every),
            models=weights,
            max_rss_drift_pct=max_rss_drift,
            slo_p99_ms=slo_p99_ms,
            ready_timeout_s=ready_timeout,
        )
        res = soak(opts)
    except LoadTestError as e:
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(2) from None
    print_summary(res)
    if not res.ok:
        print(f"soak failed: {'; '.join(res.violations)}", file=sys.stderr)
        raise typer.Exit(1)


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def print_summary(res) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"load test: {res.host}, {res.users} users, {res.duration_s:g}s", title_justify="left")
    for col in ("request", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        t.add_column(col, justify="left" if col == "request" else "right", no_wrap=col == "request")
    for r in [*res.rows, res.total]:
        style = "bold" if r is res.total else None
        t.add_row(
            r.name,
            f"{r.requests:,}",
            f"{r.failures:,}" + (f" ({r.error_rate:.1%})" if r.failures else ""),
            f"{r.rps:,.1f}",
            _ms(r.p50_ms),
            _ms(r.p95_ms),
            _ms(r.p99_ms),
            _ms(r.max_ms),
            style=style,
        )
    c = Console()
    c.print(t)
    c.print(
        f"report: {Path(res.files['html']).parent}/ (report.html, latency_throughput.png, locust_*.csv, summary.json)"
    )
    c.print("[green]SLOs met[/green]" if res.ok else "[red]SLO missed[/red]")
