"""Starts MLServer 1.7 on the bench's ports: writes ``settings.json`` and ``<model>/model-settings.json`` into a
temporary folder, then runs ``mlserver start`` on it (in this process, as the ``mlserver`` command does).

* V2 REST on ``MODELYARD_BENCH_PORT``, V2 gRPC on ``MODELYARD_BENCH_GRPC_PORT``, Prometheus metrics (on by
  default in MLServer, as modelyard's are) on a free port of its own;
* the custom runtime :class:`.mlserver_runtime.OnnxRuntime`;
* adaptive batching on: ``max_batch_size`` 64 (``MODELYARD_BENCH_MAX_BATCH``) and ``max_batch_time`` 2 ms
  (``MODELYARD_BENCH_DELAY_MS``), the same as LitServe's here;
* ``parallel_workers`` 0 (``MODELYARD_BENCH_MLSERVER_WORKERS``): MLServer's docs say 0 keeps inference in the
  main process. Its default, 1, sends every batch to one worker process over IPC, which on one server core only
  adds the round trip and a second process on that core: back to back on the bench's 2-CPU machine (uvloop
  0.21) it sustained 507 (REST) and 716 (gRPC) req/s at p99 <= 50 ms against 636 and 850 with 0, and at
  500 req/s its gRPC p50 was 130 ms against 5.4 ms. MLServer 1.7.1's workers also fail to start with
  uvloop >= 0.22 ("There is no current event loop", SeldonIO/MLServer#2286), so a value above 0 needs
  uvloop 0.21.0 in the peers' environment;
* ``debug`` false: MLServer's default (true) logs every request and sets DEBUG logging.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

IMPLEMENTATION = "loadtests.bench.apps.mlserver_runtime.OnnxRuntime"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings(http_port: int, grpc_port: int, metrics_port: int, workers: int) -> dict:
    return {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": workers,
        "load_models_at_startup": True,
    }


def model_settings(name: str, max_batch_size: int, max_batch_time_s: float) -> dict:
    return {
        "name": name,
        "implementation": IMPLEMENTATION,
        "max_batch_size": max_batch_size,
        "max_batch_time": max_batch_time_s,
    }


def write_folder(folder: Path, env: dict) -> Path:
    model = env.get("MODELYARD_BENCH_MODEL", "model")
    (folder / model).mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(
        json.dumps(
            settings(
                int(env["MODELYARD_BENCH_PORT"]),
                int(env["MODELYARD_BENCH_GRPC_PORT"]),
                _free_port(),
                int(env.get("MODELYARD_BENCH_MLSERVER_WORKERS", "0")),
            ),
            indent=2,
        )
    )
    (folder / model / "model-settings.json").write_text(
        json.dumps(
            model_settings(
                model,
                int(env.get("MODELYARD_BENCH_MAX_BATCH", "64")),
                float(env.get("MODELYARD_BENCH_DELAY_MS", "2")) / 1000,
            ),
            indent=2,
        )
    )
    return folder


def main() -> int:
    folder = write_folder(Path(tempfile.mkdtemp(prefix="bench-mlserver-")), dict(os.environ))
    os.chdir(folder)  # MLServer keeps .metrics / .envs folders in the working directory
    from mlserver.cli.main import main as mlserver

    sys.argv = ["mlserver", "start", str(folder)]
    try:
        mlserver()
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
