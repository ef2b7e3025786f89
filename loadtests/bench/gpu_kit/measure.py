"""On the GPU machine, the kit installed: the facts, then the steps (pytest -m gpu, the bench on CUDA, the GPU
check), each logged and stopped at the call's deadline, continuing past a failure; $OUT gets the results, run.log
and the logs as one archive (a call brings back 8 files at most)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.bench.gpu_kit.install import Layout

BENCH_SERVERS = "modelyard,modelyard-unbatched,fastapi,http-ceiling"
STEPS = "pytest bench gpu_check"
BENCH_ARGS = "--rounds 1 --step-s 2 --rate-s 5"
MARGIN_S = 25
"""Kept back from the deadline for collecting the results."""


@dataclass
class Run:
    layout: Layout
    root: Path
    out: Path
    deadline: float
    steps: list[str] = field(default_factory=lambda: STEPS.split())
    bench_args: str = BENCH_ARGS
    gpu_check_args: str = ""
    results: list[tuple[str, str]] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.layout.state / "run"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def say(self, line: str) -> None:
        print(line, flush=True)
        with open(self.out / "run.log", "a") as f:
            f.write(line + "\n")


def environment(run: Run) -> dict:
    kit = run.layout.kit
    env = dict(os.environ)
    env.update(
        PATH=f"{run.layout.bin}:{run.layout.venv / 'bin'}:{env.get('PATH', '')}",
        PYTHONPATH=f"{run.layout.site}:{run.root}",
        PYTHONUNBUFFERED="1",
        COLUMNS=env.get("COLUMNS", "160"),
        MODELYARD_DATA_DIR=str(kit / "datasets"),
        MODELYARD_SERVING_FIXTURES=str(run.work / "fixtures"),
    )
    return env


def run_step(run: Run, name: str, cmd: list[str], env: dict) -> bool:
    """``cmd`` with its output in logs/NAME.log, run.log and here, killed (its process group) at the deadline."""
    left = int(run.deadline - time.time() - MARGIN_S)
    if left < 30:
        run.say(f"== {name}: SKIPPED, {left}s left before the deadline")
        run.results.append((name, "skipped (no time left)"))
        return False
    run.say(f"== {name} ({time.strftime('%H:%M:%S', time.gmtime())}, at most {left}s): {shlex.join(cmd)}")
    t0 = time.time()
    proc = subprocess.Popen(
        cmd, cwd=run.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 0)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                return
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue

    timer = threading.Timer(left, stop)
    timer.start()
    with open(run.logs / f"{name}.log", "ab") as log, open(run.out / "run.log", "ab") as runlog:
        for line in proc.stdout:
            for sink in (log, runlog):
                sink.write(line)
                sink.flush()
            print(line.decode(errors="replace"), end="", flush=True)
    rc = proc.wait()
    timer.cancel()
    if stopped.is_set():
        run.say(f"== {name}: stopped at the deadline")
    run.results.append((name, f"{'passed' if rc == 0 else f'FAILED (exit {rc})'}, {time.time() - t0:.0f}s"))
    return rc == 0


def gpu_test_files(root: Path) -> list[str]:
    mark = re.compile(r"pytest\.mark\.gpu")
    return sorted(str(p.relative_to(root)) for p in (root / "tests").rglob("test_*.py") if mark.search(p.read_text()))


def step_command(run: Run, step: str) -> list[str] | None:
    kit, py = run.layout.kit, str(run.layout.python)
    if step == "gpu_check":
        return [
            py,
            "-m",
            "loadtests.bench.gpu_check",
            "--repo",
            str(kit / "models"),
            "--data-dir",
            str(kit / "datasets"),
            "--out",
            str(run.out / "gpu"),
            *shlex.split(run.gpu_check_args),
        ]
    if step == "pytest":
        return [
            py,
            "-m",
            "pytest",
            "-m",
            "gpu",
            "-p",
            "no:cacheprovider",
            "--junitxml",
            str(run.logs / "pytest-gpu.xml"),
            *gpu_test_files(run.root),
        ]
    if step == "bench":
        return [
            py,
            "-m",
            "modelyard",
            "bench",
            "--device",
            "cuda",
            "--model",
            "imdb",
            "--servers",
            BENCH_SERVERS,
            "--repo",
            str(kit / "models"),
            "--data-dir",
            str(kit / "datasets"),
            "--out",
            str(run.work / "bench"),
            *shlex.split(run.bench_args),
        ]
    return None


def collect(run: Run) -> None:
    """The results into $OUT, everything else into $OUT/logs.tar.gz."""
    bench = run.work / "bench"
    for f in ("bench.json", "bench.md", "bench.png"):
        if (bench / f).is_file():
            (run.out / "bench").mkdir(exist_ok=True)
            shutil.copy2(bench / f, run.out / "bench" / f)
    checked = bench / "gpu"
    if not (run.out / "gpu" / "gpu_check.json").is_file() and (checked / "gpu_check.json").is_file():
        (run.out / "gpu").mkdir(exist_ok=True)
        for f in ("gpu_check.json", "gpu_check.md"):
            shutil.copy2(checked / f, run.out / "gpu" / f)
        run.say("== $OUT/gpu: the GPU check that the bench ran first (default arguments)")
    for f in ("gpu_check.md", "gpu_check.json"):
        if (checked / f).is_file():
            shutil.copy2(checked / f, run.logs / f"bench-{f}")
    for d in sorted(bench.glob("logs-*")) if bench.is_dir() else ():
        shutil.copytree(d, run.logs / "bench-server-logs" / d.name, dirs_exist_ok=True)
    with tarfile.open(run.out / "logs.tar.gz", "w:gz") as tar:
        tar.add(run.logs, arcname="logs")


def measure(run: Run) -> int:
    """Every step; 0 when each passed."""
    shutil.rmtree(run.work, ignore_errors=True)
    run.logs.mkdir(parents=True)
    run.out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run.layout.kit / "fixtures", run.work / "fixtures")
    env = environment(run)
    run_step(run, "facts", [str(run.layout.python), "-m", "loadtests.bench.gpu_kit", "facts", str(run.layout.kit)], env)
    for step in run.steps:
        cmd = step_command(run, step)
        if cmd is None:
            run.say(f"== {step}: unknown step (gpu_check, pytest, bench)")
            run.results.append((step, "FAILED (unknown step)"))
        else:
            run_step(run, step, cmd, env)
    collect(run)
    run.say("== summary")
    for name, result in run.results:
        run.say(f"  {name:<10} {result}")
    run.say("  $OUT: " + " ".join(sorted(str(p.relative_to(run.out)) for p in run.out.rglob("*") if p.is_file())))
    return 0 if all(r.startswith("passed") for _, r in run.results) else 1
