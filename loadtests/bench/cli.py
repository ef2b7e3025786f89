"""``modelyard bench``: modelyard against the baseline, the peers and the two ceilings, on one machine."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from loadtests.bench.load import CONNECTIONS
from loadtests.bench.servers import KEYS

SERVERS = ",".join(KEYS)


def _bodies(model: str, manifest: dict, data_dir: Path | None, folder: Path, n: int = 512) -> dict[str, Path]:
    """Real test inputs, one body per request, in one file per protocol (:mod:`loadtests.bench.bodies`): token
    ids for text models (clipped to the model's vocabulary as Keras' ``num_words`` does), rows of numbers in the
    manifest's feature order for Boston. Returns {protocol: file}."""
    from loadtests import payloads
    from loadtests.bench.bodies import write_all
    from modelyard.encoding import TextEncoder

    s = payloads.samples(model, n, str(data_dir) if data_dir else None)
    pre = manifest["preprocessing"]
    if pre["kind"] == "tabular":
        inputs = [[row[f] for f in pre["feature_names"]] for row in s.rows]
    else:
        clip = TextEncoder({}, pre["num_words"], oov_char=pre["oov_char"]).clip_ids
        inputs = [clip(ids).tolist() for ids in s.ids]
    name = (manifest.get("inputs") or [{}])[0].get("name", "features")
    return write_all(folder, model, inputs, text=pre["kind"] != "tabular", input_name=name)


def _prediction_log_ab(
    model: str, repo: Path, data_dir: Path | None, rate: int, seconds: float, rounds: int, out: Path, say
) -> None:
    """``modelyard bench --prediction-log-ab``: :mod:`loadtests.bench.predlog_ab`, its figures in ``out``."""
    from loadtests.bench import load, predlog_ab
    from modelyard.errors import ModelyardError

    if model != "imdb":
        raise ModelyardError("--prediction-log-ab measures IMDB (its real test reviews); leave --model out")
    try:
        load.require("k6")
    except load.GeneratorError as e:
        raise ModelyardError(str(e)) from None
    if len(os.sched_getaffinity(0)) < 2:
        raise ModelyardError("--prediction-log-ab needs two CPUs: the server on one, k6 on the other")
    data_dir = data_dir or (Path(os.environ["MODELYARD_DATA_DIR"]) if os.environ.get("MODELYARD_DATA_DIR") else None)
    r = predlog_ab.measure(repo, data_dir, rate, seconds, rounds, say=say)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "predlog_ab.json.tmp"
    tmp.write_text(json.dumps(r, indent=2))
    tmp.replace(out / "predlog_ab.json")
    say(predlog_ab.summary(r))
    say(f"wrote {out / 'predlog_ab.json'}")


def bench(
    model: Annotated[str, typer.Option(help="model to serve: imdb, reuters or boston")] = "imdb",
    repo: Annotated[Path, typer.Option(help="model repository with the exported model (env MODELYARD_REPO)")] = Path(
        os.environ.get("MODELYARD_REPO", "models")
    ),
    data_dir: Annotated[
        Optional[Path], typer.Option(help="Keras dataset files, for the request bodies (env MODELYARD_DATA_DIR)")
    ] = None,
    servers: Annotated[
        str,
        typer.Option(
            help=f"comma-separated, in order: {SERVERS} (the -v2 and -grpc ones "
            "speak KServe V2 REST and gRPC, the others TF Serving REST)"
        ),
    ] = SERVERS,
    p99_ms: Annotated[float, typer.Option(min=1, help="p99 target for the throughput figure (ms)")] = 50.0,
    rate: Annotated[float, typer.Option(min=1, help="fixed request rate for the latency figures (req/s)")] = 1000.0,
    rounds: Annotated[int, typer.Option(min=1, help="rounds; every server is measured once per round")] = 3,
    step_s: Annotated[float, typer.Option(min=1, help="seconds per connection count in the sweep")] = 3.0,
    rate_s: Annotated[float, typer.Option(min=1, help="seconds at the fixed rate")] = 8.0,
    connections: Annotated[str, typer.Option(help="connection counts of the sweep, comma-separated")] = ",".join(
        map(str, CONNECTIONS)
    ),
    peers_venv: Annotated[
        Path, typer.Option(help="virtual environment with LitServe, BentoML and MLServer (make bench-peers)")
    ] = Path(".bench-peers"),
    device: Annotated[
        str,
        typer.Option(
            help="cpu, or cuda: modelyard serves on the GPU, and the in-process GPU/CPU "
            "table of every model (loadtests/bench/gpu_check.py) is written first"
        ),
    ] = "cpu",
    pin: Annotated[
        bool,
        typer.Option("--pin/--no-pin", help="servers on the first half of the CPUs, load generators on the other half"),
    ] = True,
    out: Annotated[Path, typer.Option(help="folder for bench.json, bench.md and bench.png")] = Path("reports/bench"),
    prediction_log_ab: Annotated[
        bool,
        typer.Option(
            "--prediction-log-ab",
            help="instead: what the prediction log costs, as server CPU per request of two "
            "modelyard servers of IMDB side by side, the log off and on (SQLite, sample rate 1.0), both loaded at "
            "--rate for --rate-s seconds, --rounds times (loadtests/bench/predlog_ab.py); writes predlog_ab.json",
        ),
    ] = False,
) -> None:
    """Measure modelyard against a naive FastAPI route, LitServe, BentoML, MLServer and the HTTP, gRPC and engine
    ceilings, serving the same ONNX model on loopback: throughput at a p99 target, latency at a fixed rate, CPU
    used."""
    from rich.console import Console

    from loadtests.bench import load, report
    from loadtests.bench.engine import engine_throughput, onnx_file, real_test_rows, version_dir
    from loadtests.bench.run import Options, machine, run_bench, split_cpus, summarise
    from loadtests.bench.bodies import sizes as body_sizes
    from loadtests.bench.servers import PEERS, Setup, contenders, installed, peers_python
    from modelyard.errors import ModelyardError

    console = Console()
    if prediction_log_ab:
        return _prediction_log_ab(model, repo, data_dir, int(rate), rate_s, rounds, out, console.print)
    keys = [k.strip() for k in servers.split(",") if k.strip()]
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        raise ModelyardError(f"--servers: unknown {', '.join(unknown)}; choose from {SERVERS}")
    if device not in ("cpu", "cuda"):
        raise ModelyardError(f"--device {device!r}: use cpu or cuda")
    try:
        sweep = tuple(sorted({int(c) for c in connections.split(",") if c.strip()}))
        if not sweep or sweep[0] < 1:
            raise ValueError
    except ValueError:
        raise ModelyardError(f"--connections {connections!r}: give positive integers, e.g. 1,8,64") from None
    try:
        for tool in ("wrk", "k6"):
            load.require(tool)  # the REST rows' generators; the baseline, the ceiling and every peer need them
        vdir = version_dir(repo, model)
        onnx = onnx_file(repo, model)
        manifest = json.loads((vdir / "manifest.json").read_text())
    except (load.GeneratorError, FileNotFoundError) as e:
        raise ModelyardError(str(e)) from None
    py = peers_python(peers_venv)
    wanted_peers = [k for k in keys if k in PEERS]
    have = installed(py, {PEERS[k] for k in wanted_peers})
    missing = [k for k in wanted_peers if PEERS[k] not in have]
    if missing:
        why = (
            f"no peers environment at {peers_venv}"
            if py is None
            else f"{', '.join(sorted({PEERS[k] for k in missing}))} not installed in {peers_venv}"
        )
        if servers != SERVERS:
            raise ModelyardError(f"{', '.join(missing)}: {why}; create it with `make bench-peers`")
        console.print(f"[yellow]{why} (make bench-peers): measuring without {', '.join(missing)}[/yellow]")
        keys = [k for k in keys if k not in missing]
    data_dir = data_dir or (Path(os.environ["MODELYARD_DATA_DIR"]) if os.environ.get("MODELYARD_DATA_DIR") else None)
    out = out.resolve()  # the load generators run in their own folders
    out.mkdir(parents=True, exist_ok=True)
    single = out / "repo"
    shutil.rmtree(single, ignore_errors=True)
    single.mkdir()
    (single / model).symlink_to(vdir.parent.resolve(), target_is_directory=True)
    pre = manifest["preprocessing"]
    setup = Setup(
        model=model,
        repo=single,
        onnx=onnx.resolve(),
        route=f"/v1/models/{model}:predict",
        width=pre["num_words"] if pre["kind"] != "tabular" else 0,
        peers_python=py,
        device=device,
    )
    if device == "cuda":
        from loadtests.bench import gpu_check

        if (
            gpu_check.main(
                ["--repo", str(repo), "--data-dir", str(data_dir or "../shared/datasets"), "--out", str(out / "gpu")]
            )
            != 0
        ):
            raise ModelyardError(f"the GPU check failed; see {out / 'gpu' / 'gpu_check.md'}")
    bodies = _bodies(model, manifest, data_dir, out)
    server_cpus, loadgen_cpus = split_cpus() if pin else (None, None)
    opts = Options(
        p99_target_ms=p99_ms,
        rate=rate,
        step_s=step_s,
        rate_s=rate_s,
        rounds=rounds,
        server_cpus=server_cpus,
        loadgen_cpus=loadgen_cpus,
        connections=sweep,
    )
    started = time.time()
    console.print(
        f"[bold]modelyard bench[/bold]: {model} ({onnx}), servers {', '.join(keys)}; server CPUs "
        f"{sorted(server_cpus) if server_cpus else 'unpinned'}, load generator CPUs "
        f"{sorted(loadgen_cpus) if loadgen_cpus else 'unpinned'}"
    )
    results = run_bench(setup, bodies, keys, opts, out, console.print)

    # the engine ceiling: in-process onnxruntime, same CPUs and threads, at the batch sizes modelyard formed
    formed = [m.mean_batch_rows for m in results.get("modelyard", []) if m.mean_batch_rows]
    sizes = sorted({1, max(1, round(summarise(formed)["median"])) if formed else 1, 64})
    x = real_test_rows(repo, model, data_dir or Path("../shared/datasets"), n=1000)
    previous = os.sched_getaffinity(0) if server_cpus else None
    if server_cpus:
        os.sched_setaffinity(0, server_cpus)
    try:
        engine = engine_throughput(
            onnx, x, batch_sizes=tuple(sizes), device=device, threads=setup.threads, seconds=1.0, repeats=rounds
        )
    finally:
        if previous:
            os.sched_setaffinity(0, previous)

    listed = contenders(setup, 0, keys)
    titles = {c.key: c.title for c in listed}
    roles = {c.key: c.role for c in listed}
    protocols = {c.key: c.protocol for c in listed}
    rows = report.summary(results, titles, roles, p99_ms, engine, protocols)
    facts = machine(setup, opts)
    table = report.markdown(rows, p99_ms, rate)
    body_bytes = body_sizes(bodies)
    used = sorted(set(protocols.values()), key=["tfs", "v2-rest", "v2-grpc"].index)
    bodies_line = report.bodies_line(body_bytes, used, bodies)
    engine_line = "Engine ceiling (in-process onnxruntime, 1 thread, same CPUs): " + ", ".join(
        f"batch {e['batch']}: {e['rows_per_s']:,.0f} rows/s" for e in engine
    )
    machine_line = (
        f"Machine: {facts['cpu']}, {facts['logical_cpus']} logical CPUs, {facts['memory_gib']} GiB; "
        f"servers on CPUs {facts['server_cpus']}, load generators (wrk, k6, gRPC) on "
        f"{facts['loadgen_cpus']}; Python {facts['python']}; {facts['wrk']}; {facts['k6']}"
    )
    md = (
        f"{table}\n{engine_line}\n\n{machine_line}\n\nModel: {model} ONNX fp32, one row per request "
        f"(real test inputs), {rounds} rounds, median (min–max). {bodies_line}\n"
    )
    (out / "bench.md").write_text(md)
    png = report.plot(results, rows, p99_ms, out / "bench.png", f"modelyard bench: {model}, one row per request")
    path = report.write(
        out,
        {
            "model": model,
            "onnx": str(onnx),
            "options": {"p99_target_ms": p99_ms, "rate": rate, "rounds": rounds, "step_s": step_s, "rate_s": rate_s},
            "body_bytes": body_bytes,
            "machine": facts,
            "engine_ceiling": engine,
            "summary": rows,
            "raw": {k: [m.__dict__ for m in ms] for k, ms in results.items()},
            "elapsed_s": round(time.time() - started, 1),
        },
    )
    console.print(md)
    console.print(f"wrote {path}, {out / 'bench.md'}, {png}")
