"""``modelyard serve --ray``: the app of ``modelyard serve`` (serving/app.py: the inference fast path in front of
FastAPI, every REST route of TF Serving and KServe V2, batching, per-replica metrics) as a Ray Serve deployment, so
that its replicas spread over the nodes of a Ray cluster behind Ray's HTTP proxy.

Each replica builds the app itself from the settings, and Ray Serve runs the app's lifespan, which starts and stops
the data plane as ``modelyard serve`` does: every replica loads the models from ``repo`` (an absolute path that every
node must see: a shared or replicated folder) and polls it for new versions. A replica reports itself started only
once its models are loaded, so Ray's proxy never routes to one that would answer 503.

KServe V2 gRPC goes through Ray's gRPC proxy on ``--grpc-port`` (0: none): the proxy hands each request to a
replica as its raw bytes, which the replica parses and answers with the standalone server's RPC code
(serving/protocols/grpc_v2.py), statuses included. What stays with the standalone server: the standard gRPC health
service, the connection limits and header/body timeouts of serving/server.py (Ray's proxies own the connections),
and one /metrics for the whole service (a scrape through the proxy reaches one replica; Ray exports its own
metrics)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time

from modelyard.errors import ModelyardError
from modelyard.settings import Settings

APP_NAME = "modelyard"
GRPC_SERVICER = "serving.ray_serve.add_v2_service"
"""What Ray's gRPC proxy registers the KServe V2 service with (``grpc_servicer_functions``)."""
RPCS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")
TARGET_ONGOING_REQUESTS = 16
"""Autoscaling target per replica: a batching replica serves many requests at once, so more than Ray's default 2."""
LOAD_TIMEOUT_S = 300.0
"""How long a replica's startup waits for its models; past it the replica starts with what loaded (not ready)."""

log = logging.getLogger("serving")


def parse_autoscale(text: str) -> tuple[int, int]:
    """``MIN:MAX`` replicas, ``0 <= MIN <= MAX``, ``MAX >= 1``."""
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        low, high = -1, -1
    if not 0 <= low <= high or high < 1:
        raise ModelyardError(
            f"--autoscale (env MODELYARD_AUTOSCALE): MIN:MAX replicas with 0 <= MIN <= MAX and MAX >= 1, got {text!r}"
        )
    return low, high


def check_flags(settings: Settings) -> None:
    """The Ray flags need ``--ray``, and a deployment has a fixed number of replicas or an autoscaling range."""
    given = [
        f"--{name.replace('_', '-')}"
        for name in ("ray_address", "replicas", "autoscale")
        if name in settings.model_fields_set
    ]
    if given and not settings.ray:
        raise ModelyardError(
            f"{', '.join(given)}: only with --ray (each `modelyard serve` process is one server; "
            "--workers runs several)"
        )
    if settings.autoscale and "replicas" in settings.model_fields_set:
        raise ModelyardError("--replicas and --autoscale: give one (a fixed number of replicas, or MIN:MAX)")


def deployment_options(settings: Settings) -> dict:
    """Ray Serve deployment options: a fixed number of replicas or an autoscaling range; each replica may hold as
    many requests as its batcher queues (beyond that Ray's proxy queues them), and drains as the server does."""
    options = {
        "max_ongoing_requests": settings.max_queue_size + settings.max_batch_size,
        "graceful_shutdown_timeout_s": settings.drain_timeout_s,
    }
    if settings.autoscale:
        low, high = parse_autoscale(settings.autoscale)
        options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": high,
            "initial_replicas": max(low, 1),
            "target_ongoing_requests": TARGET_ONGOING_REQUESTS,
        }
    else:
        options["num_replicas"] = settings.replicas
    return options


def replica_settings(settings: Settings) -> dict:
    """What every replica is built from: the repository as an absolute path, no gRPC port, one process."""
    return settings.model_copy(
        update={"repo": settings.repo.resolve(), "grpc_port": 0, "ray": False, "workers": 1}
    ).model_dump(mode="json")


class ReadyAfterLoad:
    """ASGI wrapper: the lifespan's startup completes only once the data plane has loaded every model (it loads
    them in the background after its start), because Ray Serve routes to a replica as soon as startup completes."""

    def __init__(self, app, timeout_s: float = LOAD_TIMEOUT_S):
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def send_after_load(message):
            if message["type"] == "lifespan.startup.complete":
                await self._wait_loaded()
            await send(message)

        await self.app(scope, receive, send_after_load)

    async def _wait_loaded(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.app.dp.ready():
            if time.monotonic() > deadline:
                log.warning(
                    "models not all loaded; the replica starts with what loaded", extra={"timeout_s": self.timeout_s}
                )
                return
            await asyncio.sleep(0.1)


def add_v2_service(servicer, server) -> None:
    """The V2 service on Ray's gRPC proxy with no request deserializer: the proxy passes each request to a replica
    as raw bytes (the generated V2 message classes cannot be pickled: their descriptors live in a private pool), and
    the replica parses them as the standalone server does, so bytes that are no such message are INVALID_ARGUMENT."""
    from serving.protocols.grpc_v2 import generic_handler

    server.add_generic_rpc_handlers((generic_handler(servicer),))


class _Aborted(Exception):
    """An RPC answered with a non-OK status, which is set on Ray's gRPC context before this is raised."""


class RayGrpcContext:
    """What serving/protocols/grpc_v2.py's RPCs use of a ``grpc.aio.ServicerContext``, over Ray Serve's gRPC
    context: the request's metadata, trailing metadata, and ``abort`` (a status code and details)."""

    def __init__(self, context):
        self.context = context

    def invocation_metadata(self):
        return self.context.invocation_metadata()

    def set_trailing_metadata(self, metadata) -> None:
        self.context.set_trailing_metadata(list(metadata))

    async def abort(self, code, details: str):
        self.context.set_code(code)
        self.context.set_details(details)
        raise _Aborted(details)


def _rpc(name: str):
    """The replica method Ray's gRPC proxy calls for the V2 RPC ``name``."""

    async def call(self, request: bytes, grpc_context):
        return await getattr(self.servicer, name)(request, RayGrpcContext(grpc_context))

    call.__name__ = call.__qualname__ = name
    return call


def build_app(fields: dict):
    """The ASGI app of one replica (runs inside the replica's process)."""
    from serving.app import create_app
    from serving.logs import setup_logging

    settings = Settings(**fields)
    setup_logging(settings.log_level)
    return ReadyAfterLoad(create_app(settings))


def _deployment(settings: Settings):
    from ray import serve

    from serving.protocols.grpc_v2 import V2Servicer

    class Modelyard:
        def __init__(self, fields: dict):
            self.fields = fields

        def __serve_build_asgi_app__(self):
            app = build_app(self.fields)
            self.servicer = V2Servicer(app.app.dp)
            return app

    for name in RPCS:
        setattr(Modelyard, name, _rpc(name))
    ingress = serve.ingress()(Modelyard)
    return serve.deployment(ingress, name=APP_NAME, **deployment_options(settings)).bind(replica_settings(settings))


def connect(settings: Settings) -> bool:
    """Join the cluster at ``ray_address``, or start a local one bound to 127.0.0.1 (True: this process owns it).
    Ray's usage statistics stay off unless RAY_USAGE_STATS_ENABLED says otherwise."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if settings.ray_address:
        ray.init(address=settings.ray_address, logging_level=logging.WARNING, log_to_driver=False)
        return False
    # each replica asks Ray for one CPU: a local instance offers at least one per replica, so that N replicas start
    # on a machine with fewer cores (they share them) instead of waiting for CPUs that never come
    most = parse_autoscale(settings.autoscale)[1] if settings.autoscale else settings.replicas
    ray.init(
        num_cpus=max(len(os.sched_getaffinity(0)), most),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True


def deploy(settings: Settings) -> None:
    """Start Serve's proxy on ``host:port`` and deploy the app; returns once every replica has loaded its models."""
    from ray import serve

    grpc = {"port": settings.grpc_port, "grpc_servicer_functions": [GRPC_SERVICER]} if settings.grpc_port else None
    serve.start(
        proxy_location=settings.ray_proxy_location,
        http_options={
            "host": settings.host,
            "port": settings.port,
            "keep_alive_timeout_s": settings.keepalive_timeout_s,
        },
        grpc_options=grpc,
    )
    serve.run(_deployment(settings), name=APP_NAME, route_prefix="/")


def run_ray(settings: Settings) -> None:
    """``modelyard serve --ray``: deploy, serve until SIGTERM or SIGINT, then remove the app (and stop the local
    Ray instance when this process started it)."""
    from modelyard.extras import require
    from serving.logs import setup_logging

    require("--ray", "ray")
    check_flags(settings)
    deployment_options(settings)  # a bad --autoscale fails before Ray starts
    setup_logging(settings.log_level)
    if not settings.repo.is_dir():
        raise ModelyardError(
            f"--repo {settings.repo}: no such folder (every Ray node reads the model repository from this path)"
        )
    import ray
    from ray import serve

    owns_cluster = connect(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which sets handlers of its own
        signal.signal(sig, lambda *_: stop.set())
    try:
        deploy(settings)
        mode = f"autoscale {settings.autoscale}" if settings.autoscale else f"{settings.replicas} replica(s)"
        log.info(
            "serving on Ray Serve",
            extra={
                "url": f"http://{settings.host}:{settings.port}",
                "replicas": mode,
                "repo": str(settings.repo.resolve()),
            },
        )
        stop.wait()
        log.info("shutting down: removing the Ray Serve app")
    finally:
        if owns_cluster:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
        ray.shutdown()
