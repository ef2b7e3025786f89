"""``gpu_kit device K N`` and ``gpu_kit device run`` on the GPU machine's python3 (standard library only)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from loadtests.bench.gpu_kit import ROOT, install, measure, parts
from modelyard.errors import ModelyardError


def _env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name) or default)


def layout() -> install.Layout:
    return install.Layout(
        state=_env_path("GPU_KIT_STATE", "/tmp/gpu-kit"),
        site=_env_path("GPU_KIT_SITE", "/tmp/site"),
        venv=_env_path("GPU_KIT_VENV", "/tmp/gpu-venv"),
    )


def new_run(lay: install.Layout, started: float) -> measure.Run:
    """The steps and their arguments from GPU_KIT_STEPS, BENCH_ARGS, GPU_CHECK_ARGS; results into $OUT."""
    return measure.Run(
        layout=lay,
        root=ROOT,
        out=_env_path("OUT", str(lay.state / "out")),
        deadline=started + float(os.environ.get("GPU_KIT_DEADLINE_S") or 585),
        steps=(os.environ.get("GPU_KIT_STEPS") or measure.STEPS).split(),
        bench_args=os.environ.get("BENCH_ARGS", measure.BENCH_ARGS),
        gpu_check_args=os.environ.get("GPU_CHECK_ARGS", ""),
    )


def call(kit: Path, k: int, n: int) -> int:
    """Call k of n: keep this call's part; on the last, unpack, install and measure."""
    started = time.time()
    if not 1 <= k <= n:
        raise ModelyardError(f"device {k} {n}: give call K of N, 1 <= K <= N")
    lay = layout()
    rel = kit.relative_to(ROOT) if kit.is_relative_to(ROOT) else kit
    kit_flag = "" if kit == ROOT / ".gpu-kit" else f" --kit {rel}"
    info, missing = parts.receive(kit / str(k), k, n, lay.state)
    have = [i for i in range(1, n + 1) if i not in missing]
    print(f"call {k} of {n}: this machine has parts {' '.join(map(str, have))} of kit {info['kit']}")
    if k < n:
        print(f'next: python3 -m loadtests.bench.gpu_kit device{kit_flag} {k + 1} {n}   carry: ["{rel}/{k + 1}"]')
        return 0
    if missing:
        raise ModelyardError(
            f"parts {' '.join(map(str, missing))} are missing: /tmp was lost between calls (the "
            f"machine went idle); run calls 1..{n} again, back to back"
        )
    install.check_python(info["python"])
    run = new_run(lay, started)
    run.out.mkdir(parents=True, exist_ok=True)
    run.say("== install")
    t0 = time.time()
    try:
        meta = parts.unpack(info, lay.state, lay.kit)
        install.install(
            lay,
            meta,
            ROOT,
            use_pip=not os.environ.get("GPU_KIT_NO_PIP"),
            manual_venv=bool(os.environ.get("GPU_KIT_MANUAL_VENV")),
            log=run.say,
        )
    except ModelyardError as e:
        run.say(f"gpu_kit: install failed: {e}")
        raise
    run.say(f"installed in {time.time() - t0:.0f}s: {lay.site}, {lay.venv}, {lay.bin}")
    return measure.measure(run)


def rerun() -> int:
    """Measure again with what the last call installed."""
    started = time.time()
    lay = layout()
    if not (lay.state / "installed").is_file():
        raise ModelyardError(f"nothing installed in {lay.state}: run the calls 'device 1 N' .. 'device N N' first")
    install.check_python(json.loads((lay.kit / parts.META).read_text())["python"])
    return measure.measure(new_run(lay, started))
