"""The GPU check of issue 6, runnable where only numpy and onnxruntime-gpu are installed (no TensorFlow,
FastAPI or pydantic; nvidia-ml-py is optional and only names the GPU, as nvidia-smi does without it)::

    python -m loadtests.bench.gpu_check --repo models --data-dir ../shared/datasets --out DIR

For every model with an ONNX fp32 variant: its outputs on CUDA against CPU on up to 1,000 real test rows
(within 1e-4, provider CUDAExecutionProvider, not a silent CPU fallback); then in-process throughput and
latency per batch size on CPU and on the GPU as the server runs it (:mod:`modelyard.onnxrun`, the loader
serving and export use: its session options, IO binding), and, for comparison,
the GPU without IO binding and with CUDA graphs. Prints a markdown table and writes DIR/gpu_check.json and
DIR/gpu_check.md. Exit status 0 only when every model ran on CUDA and agreed with CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from loadtests.bench.engine import BATCH_SIZES, cuda_matches_cpu, engine_throughput, onnx_file, real_test_rows
from modelyard.gpu import gpu_facts
from modelyard.onnxrun import CUDA, CudaOptions, CudaUnavailable, intra_op_threads, preload_cuda_libraries

COMPARISONS = {"gpu_plain": {"io_binding": False}, "gpu_graph": {"cuda_graph": True}}
"""GPU runs beside the server's way, by what they change."""


def gpu_name(device_id: int) -> dict | None:
    """NVML's facts about the GPU, else its name and memory from nvidia-smi, else None."""
    facts = gpu_facts(device_id)
    if facts or not shutil.which("nvidia-smi"):
        return facts
    r = subprocess.run(
        ["nvidia-smi", f"--id={device_id}", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
    )
    if r.returncode or "," not in r.stdout:
        return None
    name, total = r.stdout.strip().rsplit(",", 1)
    return {"index": device_id, "name": name.strip(), "memory_total_bytes": int(total) * 1024 * 1024}


def environment(args) -> dict:
    import numpy as np
    import onnxruntime as ort

    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "available_providers": ort.get_available_providers(),
        "cuda_preload": preload_cuda_libraries(),
        "gpu": gpu_name(args.device_id),
        "cpu_threads": args.threads,
        "batch_sizes": args.batch_sizes,
        "seconds": args.seconds,
        "repeats": args.repeats,
    }


def check_model(args, model: str) -> dict:
    rec: dict = {"model": model}
    try:
        path = onnx_file(args.repo, model, args.variant)
        x = real_test_rows(args.repo, model, args.data_dir, args.rows)
    except Exception as e:  # noqa: BLE001 - reported per model, the others still run
        return rec | {"error": f"{type(e).__name__}: {e}"}
    rec |= {"onnx": str(path), "rows": len(x)}
    run = dict(batch_sizes=args.batch_sizes, seconds=args.seconds, repeats=args.repeats)
    server = CudaOptions(device_id=args.device_id, graph_max_rows=max(args.batch_sizes))
    print(f"{model}: {len(x)} real test rows, {path}", file=sys.stderr)
    if args.cuda_error is None:
        try:
            rec["agreement"] = cuda_matches_cpu(path, x[:1000], args.atol, server)
        except CudaUnavailable as e:
            args.cuda_error = str(e)  # the same for every model: tried once
    if args.cuda_error is not None:
        rec["cuda_error"] = args.cuda_error
    rec["cpu"] = engine_throughput(path, x, device="cpu", threads=args.threads, **run)
    if "cuda_error" in rec:
        return rec
    rec["gpu"] = engine_throughput(path, x, device="cuda", cuda=server, **run)
    for key, change in COMPARISONS.items() if args.compare else ():
        opts = CudaOptions(
            device_id=args.device_id, graph_max_rows=max(args.batch_sizes), cuda_graph=change.get("cuda_graph", False)
        )
        try:
            rec[key] = engine_throughput(path, x, device="cuda", cuda=opts, io_binding=change.get("io_binding"), **run)
        except Exception as e:  # noqa: BLE001 - a comparison that cannot run is reported, not fatal
            rec[f"{key}_error"] = f"{type(e).__name__}: {e}"
    return rec


def _rate(rows: list[dict] | None, i: int) -> str:
    return f"{rows[i]['rows_per_s']:,.0f}" if rows else "-"


def _ms(rows: list[dict] | None, i: int, key: str = "p50_ms") -> str:
    return f"{rows[i][key]:.3f}" if rows else "-"


def table(results: list[dict]) -> str:
    head = [
        "model",
        "batch",
        "CPU rows/s",
        "CPU p50 ms",
        "GPU rows/s",
        "GPU p50 ms",
        "GPU p99 ms",
        "GPU / CPU",
        "GPU no IO binding rows/s",
        "GPU CUDA graph rows/s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        cpu, gpu = r.get("cpu"), r.get("gpu")
        for i, row in enumerate(cpu or []):
            ratio = f"{gpu[i]['rows_per_s'] / row['rows_per_s']:.2f}x" if gpu else "-"
            lines.append(
                "| "
                + " | ".join(
                    [
                        r["model"],
                        str(row["batch"]),
                        _rate(cpu, i),
                        _ms(cpu, i),
                        _rate(gpu, i),
                        _ms(gpu, i),
                        _ms(gpu, i, "p99_ms"),
                        ratio,
                        _rate(r.get("gpu_plain"), i),
                        _rate(r.get("gpu_graph"), i),
                    ]
                )
                + " |"
            )
    return "\n".join(lines)


def verdict(results: list[dict]) -> list[str]:
    """What fails the check, one line per model; empty when every model passed."""
    out = []
    for r in results:
        a = r.get("agreement")
        if "error" in r or "cuda_error" in r:
            out.append(f"{r['model']}: {r.get('error') or r['cuda_error']}")
        elif a["provider"] != CUDA or not a["ok"]:
            out.append(
                f"{r['model']}: provider {a['provider']}, max |CUDA - CPU| {a['max_abs_diff']:.3g} "
                f"on {a['rows']} rows (limit {a['atol']:g})"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtests.bench.gpu_check",
        description=__doc__.split("::")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--repo", type=Path, default=Path("models"))
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="imdb,reuters,boston")
    ap.add_argument("--variant", default="onnx_fp32")
    ap.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)))
    ap.add_argument("--seconds", type=float, default=1.0, help="per timed run (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per batch size (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: as the server, min(4, cores))")
    ap.add_argument("--rows", type=int, default=1000, help="real test rows to cycle and to compare (default 1000)")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--device-id", type=int, default=0)
    ap.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="skip the GPU runs without IO binding and with CUDA graphs",
    )
    args = ap.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.threads = intra_op_threads(args.threads)
    args.cuda_error = None
    env = environment(args)
    gpu = env["gpu"]
    print(f"onnxruntime {env['onnxruntime']}; GPU: {gpu['name'] if gpu else 'none found'}", file=sys.stderr)
    results = [check_model(args, m.strip()) for m in args.models.split(",") if m.strip()]
    md = table(results)
    failed = verdict(results)
    checks = [
        f"- {r['model']}: {r['agreement']['provider']}, max |CUDA - CPU| = {r['agreement']['max_abs_diff']:.3g} "
        f"on {r['agreement']['rows']} real test rows"
        for r in results
        if "agreement" in r
    ]
    report = "\n".join(
        [
            f"GPU: {gpu['name'] if gpu else 'none found'}; onnxruntime {env['onnxruntime']}; "
            f"CPU: {env['cpu_count']} cores, {args.threads} threads",
            "",
            md,
            "",
            *checks,
            *(f"- FAILED {line}" for line in failed),
        ]
    )
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(
        json.dumps({"environment": env, "results": results, "failed": failed}, indent=2) + "\n"
    )
    (args.out / "gpu_check.md").write_text(report + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
