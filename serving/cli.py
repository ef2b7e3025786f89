"""``modelyard serve``: every flag also from ``MODELYARD_*`` environment variables."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelyard.settings import load_settings


class RuntimeName(str, Enum):
    onnx = "onnx"
    tflite = "tflite"
    savedmodel = "savedmodel"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def serve(
    repo: Annotated[Optional[Path], typer.Option(help="model repository (env MODELYARD_REPO; default ./models)")] = None,
    host: Annotated[Optional[str], typer.Option(help="bind address (env MODELYARD_HOST; default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (env MODELYARD_PORT; default 8000)")] = None,
    grpc_port: Annotated[Optional[int], typer.Option(min=0, max=65535, help="KServe V2 gRPC port, same process "
                                                     "(env MODELYARD_GRPC_PORT; default 8001; 0 = no gRPC)")] = None,
    runtime: Annotated[Optional[RuntimeName], typer.Option(help="runtime (env MODELYARD_RUNTIME; default onnx)")] = None,
    variant: Annotated[Optional[str], typer.Option(help="manifest variant to serve (env MODELYARD_VARIANT; default "
                                                   "per runtime: onnx_fp32, tflite_fp32, savedmodel)")] = None,
    device: Annotated[Optional[Device], typer.Option(help="auto|cpu|cuda (env MODELYARD_DEVICE); cuda without a "
                                                     "usable GPU is an error")] = None,
    config: Annotated[Optional[Path], typer.Option(help="serving config, YAML or JSON: version policy, labels, "
                                                   "traffic split, shadow (env MODELYARD_CONFIG)")] = None,
    api_key: Annotated[Optional[str], typer.Option(help="require this key on predict and admin routes "
                                                   "(env MODELYARD_API_KEY)")] = None,
    enable_admin: Annotated[Optional[bool], typer.Option("--enable-admin/--disable-admin",
                                                         help="admin reload/unload routes (env MODELYARD_ENABLE_ADMIN)")] = None,
    max_batch_size: Annotated[Optional[int], typer.Option(min=1, help="rows per batch (default 64)")] = None,
    max_queue_delay_ms: Annotated[Optional[float], typer.Option(min=0, help="wait for more requests per batch, ms "
                                                              "(default 0: never wait idle)")] = None,
    max_queue_size: Annotated[Optional[int], typer.Option(min=1, help="queued requests per model before 503 "
                                                          "(default 256)")] = None,
    poll_interval_s: Annotated[Optional[float], typer.Option(min=0, help="repository poll period, 0 = off "
                                                             "(default 5)")] = None,
) -> None:
    """Serve every model in the repository over TF Serving REST and KServe V2 (REST and gRPC), with Prometheus
    /metrics."""
    settings = load_settings(repo=repo, host=host, port=port, grpc_port=grpc_port, runtime=runtime.value if runtime else None,
                             variant=variant, device=device.value if device else None, config=config,
                             api_key=api_key, enable_admin=enable_admin, max_batch_size=max_batch_size,
                             max_queue_delay_ms=max_queue_delay_ms, max_queue_size=max_queue_size,
                             poll_interval_s=poll_interval_s)
    run_server(settings)


def run_server(settings) -> None:
    import logging

    import uvicorn

    from serving.app import create_app
    from serving.logs import setup_logging
    from serving.protocols.grpc_v2 import check_port
    from serving.registry import ServeConfig, preflight

    setup_logging(settings.log_level)
    ServeConfig.read(settings.config)  # a bad config file is a startup error
    preflight(settings)
    check_port(settings)
    if not settings.repo.is_dir():
        logging.getLogger("serving").warning("model repository does not exist yet; polling for it",
                                             extra={"repo": str(settings.repo)})
    app = create_app(settings)
    kw = {}
    try:
        import uvloop  # noqa: F401
        kw["loop"] = "uvloop"
    except ImportError:
        pass
    try:
        import httptools  # noqa: F401
        kw["http"] = "httptools"
    except ImportError:
        pass
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=settings.drain_timeout_s, server_header=False,
                            proxy_headers=False, **kw)
    _server_class()(config).run()


def _server_class():
    import contextlib

    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's server (SIGTERM: stop accepting, finish in-flight requests, run the lifespan shutdown that
        drains every batch queue), exiting 0 after a clean drain instead of re-raising the signal."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                self._captured_signals.clear()
    return DrainingServer

