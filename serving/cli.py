"""``modelyard serve``: every flag also from ``MODELYARD_*`` environment variables."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelyard.errors import ModelyardError
from modelyard.settings import load_settings
from serving.runtimes import RUNTIMES


RuntimeName = Enum("RuntimeName", {name: name for name in RUNTIMES}, type=str)
"""``--runtime``'s choices: the registered runtimes (serving/runtimes/__init__.py)."""


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class WorkerSocket(str, Enum):
    reuseport = "reuseport"
    shared = "shared"


def serve(
    repo: Annotated[
        Optional[Path], typer.Option(help="model repository (env MODELYARD_REPO; default ./models)")
    ] = None,
    host: Annotated[Optional[str], typer.Option(help="bind address (env MODELYARD_HOST; default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (env MODELYARD_PORT; default 8000)")] = None,
    grpc_port: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            max=65535,
            help="KServe V2 gRPC port, same process (env MODELYARD_GRPC_PORT; default 8001; 0 = no gRPC)",
        ),
    ] = None,
    runtime: Annotated[
        Optional[RuntimeName], typer.Option(help="runtime (env MODELYARD_RUNTIME; default onnx)")
    ] = None,
    variant: Annotated[
        Optional[str],
        typer.Option(
            help="manifest variant to serve (env MODELYARD_VARIANT; default "
            "per runtime: onnx_fp32, tflite_fp32, savedmodel)"
        ),
    ] = None,
    device: Annotated[
        Optional[Device],
        typer.Option(help="auto|cpu|cuda (env MODELYARD_DEVICE); cuda without a usable GPU is an error"),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            help="serving config, YAML or JSON: version policy, labels, traffic split, shadow (env MODELYARD_CONFIG)"
        ),
    ] = None,
    api_key: Annotated[
        Optional[str],
        typer.Option(help="require this key on every route but /v2/health/* and /metrics (env MODELYARD_API_KEY)"),
    ] = None,
    api_key_file: Annotated[
        Optional[Path],
        typer.Option(help="a file of keys, one per line, all valid (rotation; env MODELYARD_API_KEY_FILE)"),
    ] = None,
    public_metadata: Annotated[
        Optional[bool],
        typer.Option(
            "--public-metadata/--private-metadata",
            help="with a key: metadata, status and docs open (env MODELYARD_PUBLIC_METADATA)",
        ),
    ] = None,
    enable_admin: Annotated[
        Optional[bool],
        typer.Option("--enable-admin/--disable-admin", help="admin reload/unload routes (env MODELYARD_ENABLE_ADMIN)"),
    ] = None,
    max_batch_size: Annotated[Optional[int], typer.Option(min=1, help="rows per batch (default 64)")] = None,
    max_queue_delay_ms: Annotated[
        Optional[float], typer.Option(min=0, help="wait for more requests per batch, ms (default 0: never wait idle)")
    ] = None,
    max_queue_size: Annotated[
        Optional[int], typer.Option(min=1, help="queued requests per model before 503 (default 1024)")
    ] = None,
    poll_interval_s: Annotated[
        Optional[float], typer.Option(min=0, help="repository poll period, 0 = off (default 5)")
    ] = None,
    max_connections: Annotated[
        Optional[int],
        typer.Option(min=1, help="open HTTP connections; past them a request is answered 503 (default 1000)"),
    ] = None,
    keepalive_timeout_s: Annotated[
        Optional[float], typer.Option(min=0.1, help="idle seconds allowed between requests on a connection (default 5)")
    ] = None,
    ray: Annotated[
        Optional[bool],
        typer.Option(
            "--ray/--no-ray",
            help="deploy to Ray Serve; host and port are its HTTP proxy's (env MODELYARD_RAY; see README, Ray)",
        ),
    ] = None,
    ray_address: Annotated[
        Optional[str],
        typer.Option(
            help="with --ray: cluster to join, auto or HOST:PORT (env MODELYARD_RAY_ADDRESS; default: start one here)"
        ),
    ] = None,
    replicas: Annotated[
        Optional[int], typer.Option(min=1, help="with --ray: replicas (env MODELYARD_REPLICAS; default 1)")
    ] = None,
    autoscale: Annotated[
        Optional[str],
        typer.Option(help="with --ray: MIN:MAX replicas, scaled on requests in flight (env MODELYARD_AUTOSCALE)"),
    ] = None,
    drain_timeout_s: Annotated[
        Optional[float],
        typer.Option(
            min=0,
            help="on SIGTERM, seconds to finish what is "
            "in flight, HTTP and gRPC together; the process "
            "exits within it (default 30)",
        ),
    ] = None,
    prediction_log: Annotated[
        Optional[str],
        typer.Option(
            help="log every answered request to this database: "
            "sqlite:///path or postgresql://user@host/db (env "
            "MODELYARD_PREDICTION_LOG; default: off)"
        ),
    ] = None,
    log_sample_rate: Annotated[
        Optional[float],
        typer.Option(
            min=0,
            max=1,
            help="share of requests the prediction "
            "log keeps (env MODELYARD_LOG_SAMPLE_RATE; default "
            "1.0; per model: log_sample_rate in --config)",
        ),
    ] = None,
    workers: Annotated[
        Optional[str],
        typer.Option(
            help="server processes on the port, each with its own models "
            "(env MODELYARD_WORKERS; default 1; auto = the usable CPUs)"
        ),
    ] = None,
    worker_socket: Annotated[
        Optional[WorkerSocket],
        typer.Option(
            help="with workers: reuseport (a socket each) or shared (one socket) (env MODELYARD_WORKER_SOCKET)"
        ),
    ] = None,
) -> None:
    """Serve every model in the repository over TF Serving REST and KServe V2 (REST and gRPC), with Prometheus
    /metrics."""
    settings = load_settings(
        repo=repo,
        host=host,
        port=port,
        grpc_port=grpc_port,
        runtime=runtime.value if runtime else None,
        variant=variant,
        device=device.value if device else None,
        config=config,
        api_key=api_key,
        api_key_file=api_key_file,
        public_metadata=public_metadata,
        enable_admin=enable_admin,
        max_batch_size=max_batch_size,
        max_queue_delay_ms=max_queue_delay_ms,
        max_queue_size=max_queue_size,
        poll_interval_s=poll_interval_s,
        max_connections=max_connections,
        keepalive_timeout_s=keepalive_timeout_s,
        drain_timeout_s=drain_timeout_s,
        prediction_log=prediction_log,
        log_sample_rate=log_sample_rate,
        workers=workers,
        worker_socket=worker_socket.value if worker_socket else None,
        ray=ray,
        ray_address=ray_address,
        replicas=replicas,
        autoscale=autoscale,
    )
    from serving.ray_serve import check_flags, run_ray

    check_flags(settings)
    if settings.ray:
        return run_ray(settings)
    run_server(settings)


def run_server(settings) -> None:
    import logging

    if settings.worker_count() > 1:
        from serving.workers import share_metrics

        share_metrics()

    from serving.runtimes import require_runtime
    from serving.logs import setup_logging
    from serving.protocols.grpc_v2 import check_port
    from serving.loading import preflight
    from serving.serving_config import ServeConfig

    # a supervisor runs no native code, and its workers must inherit the real stderr to capture their own
    setup_logging(settings.log_level, native=settings.worker_count() == 1)
    require_runtime(settings.runtime)  # a runtime whose extra is not installed is a startup error naming it
    ServeConfig.read(settings.config)  # a bad config file is a startup error
    preflight(settings)
    check_port(settings)
    if not settings.repo.is_dir():
        logging.getLogger("serving").warning(
            "model repository does not exist yet; polling for it", extra={"repo": str(settings.repo)}
        )
    if settings.worker_count() > 1:
        from serving.workers import Supervisor

        if settings.enable_admin:
            raise ModelyardError(
                "--enable-admin needs --workers 1: an admin load or unload would reach one worker "
                "only; with workers, change the model repository instead (every worker polls it)"
            )

        raise SystemExit(Supervisor(settings).run())
    from serving.server import build_server

    build_server(settings).run()
