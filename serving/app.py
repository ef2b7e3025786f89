"""The ASGI app: :class:`ServingMiddleware` (request id, body limit, compression, the inference fast path) in
front of FastAPI, whose routes are the flat list :data:`ROUTES` of handlers in ``serving/rest.py``; the gRPC
server starts and stops with it. Every handler calls one :class:`~serving.dataplane.DataPlane`.
Errors are ``{"error": "..."}`` with 4xx for anything the client can fix.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

import modelyard
from modelyard.settings import Settings
from serving import console, rest
from serving import types as wire
from serving.auth import PUBLIC_PATHS, rest_scope
from serving.dataplane import DataPlane
from serving.errors import ServingError
from serving.feedback import OPENAPI_BODY as FEEDBACK_BODY
from serving.feedback import feedback
from serving.logs import new_request_id, request_id
from serving.protocols.grpc_v2 import start_grpc_server, stop_grpc_server
from serving.protocols.http import (
    COMPRESS_MIN_BYTES,
    JSON_MEDIA_TYPES,
    BodyTooLarge,
    accepted_encoding,
    check_content_type,
    compress,
    decompress,
)
from serving.rest import InferenceRoute, json_response
from serving.server import cycle_of, respond

log = logging.getLogger("serving.app")
access = logging.getLogger("serving.access")

_WANTED = {
    k: k.decode()
    for k in (
        b"x-request-id",
        b"content-length",
        b"content-type",
        b"content-encoding",
        b"accept-encoding",
        b"x-api-key",
        b"authorization",
        b"inference-header-content-length",
    )
}
"""The request headers the fast path reads (as the names it reads them by); no other header is decoded."""


class InferenceRoutes:
    """The inference routes, matched on the raw path and answered in front of FastAPI.

    These are the only routes on the hot path. Answering them here skips FastAPI's per-request machinery
    (dependency solving, Request objects, response classes), which cost more than the model itself for models
    this small (see README, Benchmark). FastAPI still documents them (:func:`_openapi`) and serves the rest.
    """

    _PATTERNS = (
        (
            rest.tfs_call,
            re.compile(
                r"/v1/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+)|/labels/"
                r"(?P<label>[^/]+))?:(?P<method>predict|classify|regress)"
            ),
        ),
        (rest.v2_infer, re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer")),
    )
    CACHE_SIZE = 1024
    CACHE_PATH_MAX = 200
    """Only matched paths up to this length are remembered, at most ``CACHE_SIZE`` of them (then the cache is
    emptied): whatever paths a client sends, the cache stays a few hundred KiB."""

    def __init__(self):
        self.matched: dict[str, InferenceRoute] = {}
        """Paths already matched (look here first: :meth:`match` is for the others)."""

    def match(self, path: str) -> InferenceRoute | None:
        """The route of an inference path, whatever the method; else None."""
        found = self.matched.get(path)
        if found is not None:
            return found
        for handler, pattern in self._PATTERNS:
            m = pattern.fullmatch(path)
            if m is not None:
                method = m.groupdict().get("method")
                found = InferenceRoute(
                    handler,
                    f"v1_{method}" if method else "v2_infer",
                    m["name"],
                    m["version"],
                    m.groupdict().get("label"),
                    method,
                )
                if len(path) <= self.CACHE_PATH_MAX:
                    if len(self.matched) >= self.CACHE_SIZE:
                        self.matched.clear()
                    self.matched[path] = found
                return found
        return None


class ServingMiddleware:
    """Request id, API key, body size limit, in-flight gauge, one JSON access-log line per request (sampled,
    long fields cut), and the inference routes' fast path with admission control (pure ASGI).

    On the fast path each request costs what its checks need and little more: :meth:`_route` is no coroutine
    (it hands back the one that answers), the route is parsed once per path, and only the headers read are
    decoded (README, "The REST fast path after the data plane and the hardening")."""

    LOG_FIELD_MAX = 200

    def __init__(self, app, settings: Settings, dataplane: DataPlane):
        self.app = app
        self.dp = dataplane
        self.limit = settings.max_body_bytes
        self.access_log = settings.access_log
        self.log_sample = settings.access_log_sample
        self.routes = InferenceRoutes()
        self.in_flight = 0
        dataplane.metrics.track_in_flight(lambda: self.in_flight)  # read at scrape: no lock per request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for k, v in scope["headers"]:
            if k in _WANTED:
                headers[_WANTED[k]] = v.decode("latin-1")
        rid = headers.get("x-request-id", "")[:128] or new_request_id()
        token = request_id.set(rid)
        t0 = time.perf_counter() if self.access_log else 0.0
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        self.in_flight += 1
        try:
            status = await self._route(scope, headers, receive, send, rid_header)
        finally:
            self.in_flight -= 1
        if self.access_log and (status >= 400 or self.log_sample >= 1 or random.random() < self.log_sample):
            access.info(
                "request",
                extra={
                    "method": scope["method"][:16],
                    "path": scope["path"][: self.LOG_FIELD_MAX],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
                },
            )
        request_id.reset(token)

    def _route(self, scope, headers: dict, receive, send, rid_header) -> Awaitable[int]:
        """What answers the request: the fast path, an error, or FastAPI (awaited by :meth:`__call__`)."""
        method, path = scope["method"], scope["path"]
        cycle = cycle_of(send)  # under uvicorn: the answer in one write
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return self._error(send, BodyTooLarge(self.limit), rid_header, cycle)
        route = self.routes.matched.get(path) or self.routes.match(path)
        if route is None:
            try:
                self.dp.authorize(headers, rest_scope(method, path))
            except ServingError as e:
                return self._error(send, e, rid_header, cycle)
            return self._framework(scope, receive, send, rid_header)
        if method != "POST":
            return self._error(
                send,
                ServingError(
                    f"{method} is not allowed on {path[: self.LOG_FIELD_MAX]}; use POST", 405, {"Allow": "POST"}
                ),
                rid_header,
                cycle,
            )
        try:
            routed = self.dp.admit(route.name, route.version, route.label, route.route, "rest", headers)
        except ServingError as e:
            return self._error(send, e, rid_header, cycle)
        content_type = headers.get("content-type")
        if content_type is not None and content_type not in JSON_MEDIA_TYPES:  # else surely accepted
            try:
                check_content_type(content_type)
            except ServingError as e:
                self.dp.refused(route.name, route.route, "rest", e.status)
                return self._error(send, e, rid_header, cycle)
        return self._answer(route, routed, headers, receive, send, rid_header, cycle)

    async def _framework(self, scope, receive, send, rid_header) -> int:
        """FastAPI, with the body limit enforced while it reads and the request id added to its answer."""
        status = [500]
        started = [False]
        limit = self.limit
        received = [0]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                started[0] = True
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        async def receive_wrapper():
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge as e:
            if not started[0]:
                return await self._error(send, e, rid_header)
        return status[0]

    async def _answer(self, route: InferenceRoute, routed, headers: dict, receive, send, rid_header, cycle) -> int:
        """The fast path: read the body (within the limit), decompress it, run the handler, send its answer."""
        if cycle is not None and not cycle.more_body and not cycle.waiting_for_100_continue:
            if cycle.disconnected:  # the body came whole with the head (the usual request): no receive() round
                return 499
            body, more = bytes(cycle.body), False
        else:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 499
            body, more = message.get("body", b""), message.get("more_body", False)
        try:
            if len(body) > self.limit:
                raise BodyTooLarge(self.limit)
            if more:
                body = await self._rest_of_body(body, receive)
                if body is None:
                    return 499
            if "content-encoding" in headers:
                body = decompress(body, headers["content-encoding"], self.limit)
            reply = await route.handler(self.dp, body, headers, routed, route)
        except ServingError as e:
            return await self._error(send, e, rid_header, cycle)
        except Exception:  # noqa: BLE001 - a bug must not take the connection down without an answer
            log.exception("unhandled error")
            return await self._error(
                send, ServingError(f"internal error; request id {request_id.get()}"), rid_header, cycle
            )
        out, extra = reply.body, reply.headers
        coding = accepted_encoding(headers.get("accept-encoding")) if len(out) >= COMPRESS_MIN_BYTES else None
        if coding is not None:
            out = compress(out, coding)
            extra = [*extra, (b"content-encoding", coding.encode())]
        head = [(b"content-type", reply.content_type), (b"content-length", b"%d" % len(out)), rid_header, *extra]
        if cycle is None or not respond(cycle, 200, head, out):
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": out})
        return 200

    async def _rest_of_body(self, first: bytes, receive) -> bytes | None:
        """A body sent in several messages, whole (None: the client went away); BodyTooLarge past the limit."""
        chunks = [first]
        size = len(first)
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise BodyTooLarge(self.limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    @staticmethod
    async def _error(send, e: ServingError, rid_header, cycle=None) -> int:
        body = orjson.dumps({"error": e.message})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            rid_header,
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in e.headers.items()),
        ]
        if e.status == 413:
            headers.append((b"connection", b"close"))
        if cycle is None or not respond(cycle, e.status, headers, body):
            await send({"type": "http.response.start", "status": e.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        return e.status


# ------------------------------------------------------------------ routes
_TFS, _V2, _TRITON, _ADMIN = ["TF Serving REST"], ["KServe V2"], ["Triton extensions"], ["admin"]
_M = "/v2/models/{name}"
_MV = "/v2/models/{name}/versions/{version}"
ROUTES = [
    # (method, path, handler, tags, summary)
    ("GET", "/v1/models/{name}", rest.tfs_status, _TFS, "Model version status"),
    ("GET", "/v1/models/{name}/versions/{version}", rest.tfs_status, _TFS, "Version status"),
    ("GET", "/v1/models/{name}/labels/{label}", rest.tfs_status, _TFS, "Labelled version status"),
    ("GET", "/v1/models/{name}/metadata", rest.tfs_metadata, _TFS, "Signature and serving metadata"),
    ("GET", "/v1/models/{name}/versions/{version}/metadata", rest.tfs_metadata, _TFS, "Version metadata"),
    ("GET", "/v1/models/{name}/labels/{label}/metadata", rest.tfs_metadata, _TFS, "Labelled version metadata"),
    ("GET", "/v2", rest.v2_server, _V2, "Server metadata"),
    ("GET", "/v2/health/live", rest.v2_live, _V2, "Liveness"),
    ("GET", "/v2/health/ready", rest.v2_ready, _V2, "True once every model is loaded and warmed up"),
    ("GET", "/v2/models/stats", rest.v2_model_stats, _TRITON, "Statistics of every model"),
    ("GET", _M, rest.v2_model, _V2, "Model metadata: the input to send, outputs, alternative inputs"),
    ("GET", _MV, rest.v2_model, _V2, "Model version metadata"),
    ("GET", _M + "/ready", rest.v2_model_ready, _V2, "Model readiness"),
    ("GET", _MV + "/ready", rest.v2_model_ready, _V2, "Model version readiness"),
    ("GET", _M + "/config", rest.v2_model_config, _TRITON, "Model configuration"),
    ("GET", _MV + "/config", rest.v2_model_config, _TRITON, "Model version configuration"),
    ("GET", _M + "/stats", rest.v2_model_stats, _TRITON, "Statistics: counts and cumulative time per stage"),
    ("GET", _MV + "/stats", rest.v2_model_stats, _TRITON, "Statistics of one version"),
    ("POST", _M + "/feedback", feedback, ["feedback"], "Ground truth for logged predictions (--prediction-log)"),
    ("POST", "/v2/repository/index", rest.v2_repository_index, _TRITON, "Repository index"),
    ("POST", "/v2/repository/models/{name}/load", rest.v2_repository_load, _TRITON, "Load a model (admin)"),
    ("POST", "/v2/repository/models/{name}/unload", rest.v2_repository_unload, _TRITON, "Unload a model (admin)"),
    ("POST", "/admin/reload", rest.admin_reload, _ADMIN, "Poll the repository now, retrying failed versions"),
    ("POST", "/admin/models/{name}/reload", rest.admin_reload_model, _ADMIN, "Reload one model"),
    ("POST", "/admin/models/{name}/versions/{version}/unload", rest.admin_unload, _ADMIN, "Unload one version"),
    ("GET", "/metrics", rest.prometheus, ["metrics"], "Prometheus metrics"),
]


def _body_doc(model, examples: dict) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": wire.inline_schema(model), "examples": examples}},
        }
    }


_ERRORS = {
    400: {"model": wire.ErrorResponse, "description": "bad input; the message names the field"},
    401: {"model": wire.ErrorResponse, "description": "missing or wrong API key"},
    404: {"model": wire.ErrorResponse, "description": "unknown model, version or label"},
    413: {"model": wire.ErrorResponse, "description": "body too large"},
    415: {"model": wire.ErrorResponse, "description": "a Content-Type or Content-Encoding not accepted"},
    503: {"model": wire.ErrorResponse, "description": "loading, or queue full (see Retry-After)"},
}
_INFERENCE_DOCS = [
    # (path, summary, request model, examples, response model)
    (
        "/v1/models/{name}:predict",
        "Predict: the output tensor's rows",
        wire.PredictRequest,
        wire.TFS_EXAMPLES,
        wire.PredictResponse,
    ),
    (
        "/v1/models/{name}/versions/{version}:predict",
        "Predict with one version",
        wire.PredictRequest,
        wire.TFS_EXAMPLES,
        wire.PredictResponse,
    ),
    (
        "/v1/models/{name}/labels/{label}:predict",
        "Predict with a labelled version",
        wire.PredictRequest,
        wire.TFS_EXAMPLES,
        wire.PredictResponse,
    ),
    (
        "/v1/models/{name}:classify",
        "Classify (IMDB, Reuters): every label with its score",
        wire.ExamplesRequest,
        wire.CLASSIFY_EXAMPLES,
        wire.ClassifyResponse,
    ),
    (
        "/v1/models/{name}:regress",
        "Regress (Boston): the predicted value",
        wire.ExamplesRequest,
        wire.REGRESS_EXAMPLES,
        wire.RegressResponse,
    ),
    (
        "/v2/models/{name}/infer",
        "Infer (latest version, or the traffic split)",
        wire.InferenceRequest,
        wire.V2_EXAMPLES,
        wire.InferenceResponse,
    ),
    (
        "/v2/models/{name}/versions/{version}/infer",
        "Infer with one version",
        wire.InferenceRequest,
        wire.V2_EXAMPLES,
        wire.InferenceResponse,
    ),
]


def _inference_docs() -> APIRouter:
    """Declarations of the routes :class:`InferenceRoutes` answers, for the OpenAPI schema only: never mounted."""
    router = APIRouter()
    for path, summary, request, examples, response in _INFERENCE_DOCS:
        router.add_api_route(
            path,
            _documented_only,
            methods=["POST"],
            summary=summary,
            tags=_TFS if path.startswith("/v1") else _V2,
            openapi_extra=_body_doc(request, examples),
            responses={200: {"model": response}, **_ERRORS},
        )
    return router


async def _documented_only(request: Request):  # pragma: no cover - InferenceRoutes answers these paths
    raise StarletteHTTPException(500)


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=[*_inference_docs().routes, *app.routes],
        )
        for path, operations in schema["paths"].items():
            for method, op in operations.items():
                _declare_path_parameters(path, op)
                _document_statuses(path, method, op)
        # its handler reads the raw body: none, or an object whose "ready" (default false) is a boolean
        schema["paths"]["/v2/repository/index"]["post"]["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}
            },
        }
        schema["paths"][_M + "/feedback"]["post"]["requestBody"] = FEEDBACK_BODY
        for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 bodies, never sent
            schema["components"]["schemas"].pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema


def _declare_path_parameters(path: str, op: dict) -> None:
    """The inference routes' documented-only handler takes no arguments: declare their path parameters."""
    declared = {(p["name"], p["in"]) for p in op.get("parameters", [])}
    missing = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "title": n.title()}}
        for n in re.findall(r"{(\w+)}", path)
        if (n, "path") not in declared
    ]
    if missing:
        op["parameters"] = [*missing, *op.get("parameters", [])]


_ERROR_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}


def _document_statuses(path: str, method: str, op: dict) -> None:
    """The statuses the server really sends: never FastAPI's 422 (validation errors are 400), and the errors
    each route can answer (a model name can be unknown, a version not a number); ``/metrics`` is Prometheus text,
    not JSON."""
    responses = op["responses"]
    responses.pop("422", None)
    params = {p["name"] for p in op.get("parameters", [])}  # in the path or the query
    codes = [401] if path not in PUBLIC_PATHS else []
    codes += [404] if "name" in params or path.startswith("/admin") else []
    codes += [400] if method == "post" or "version" in params else []  # a version that is not a number
    codes += [413] if method == "post" else []
    codes += [415, 503] if path.endswith(("/infer", ":predict", ":classify", ":regress")) else []
    codes += [503] if path.endswith("/ready") else []
    for code in codes:
        responses.setdefault(str(code), {"description": _ERRORS[code]["description"], **_ERROR_REF})
    if path == "/metrics":
        responses["200"]["content"] = {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}
    if path.endswith("/infer"):  # outputs asked for as binary tensors (Triton's binary tensor data extension)
        responses["200"]["content"]["application/octet-stream"] = {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "the JSON header (InferenceResponse) of "
                "Inference-Header-Content-Length bytes, then each binary output's bytes (binary_data_size)",
            }
        }
        responses["200"]["headers"] = {
            "Inference-Header-Content-Length": {
                "description": "length of the JSON header of a binary answer",
                "schema": {"type": "integer"},
            }
        }


# ------------------------------------------------------------------ errors
async def _serving_error(request: Request, e: ServingError):
    return json_response({"error": e.message}, e.status, e.headers)


async def _http_error(request: Request, e: StarletteHTTPException):
    msg = e.detail if isinstance(e.detail, str) else str(e.detail)
    if e.status_code == 404 and msg == "Not Found":
        msg = f"no route {request.method} {request.url.path}; see /docs"
    return json_response({"error": msg}, e.status_code, getattr(e, "headers", None))


async def _validation_error(request: Request, e: RequestValidationError):
    first = e.errors()[0]
    return json_response({"error": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"}, 400)


async def _internal(request: Request, e: Exception):
    log.exception("unhandled error")
    return json_response({"error": f"internal error; request id {request_id.get()}"}, 500)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    dp: DataPlane = app.state.dataplane
    grpc_server = await start_grpc_server(dp, dp.settings)
    await dp.start()
    try:
        yield
    finally:
        drain = getattr(app.state, "drain", None)  # serving/server.py:Drain, set by `modelyard serve`
        await stop_grpc_server(grpc_server, drain.grace() if drain else dp.settings.drain_timeout_s)
        await dp.stop()


def create_app(settings: Settings) -> ServingMiddleware:
    """The ASGI app: :class:`ServingMiddleware` (the inference fast path) in front of the FastAPI app (``.app``),
    outside FastAPI's own middleware stack so that the hot path pays for none of it."""
    app = FastAPIOffline(
        title="modelyard serving",
        version=modelyard.__version__,
        lifespan=_lifespan,
        redoc_url=None,  # serving/console.py serves /redoc, with no request off this server
        description="IMDB, Reuters and Boston housing models over TF Serving REST (`/v1`) and "
        "KServe V2 / Open Inference Protocol (`/v2`, and gRPC). Text models take raw text, "
        "token ids or multi-hot vectors; Boston takes its 13 features by name or as a list.",
    )
    app.state.dataplane = dp = DataPlane(settings)
    app.state.settings = settings
    for method, path, handler, tags, summary in ROUTES:
        app.add_api_route(path, handler, methods=[method], tags=tags, summary=summary)
    console.mount(app)  # the web console at /ui/ (serving/console.py); /docs and /redoc from local assets
    for exc, handler in (
        (ServingError, _serving_error),
        (StarletteHTTPException, _http_error),
        (RequestValidationError, _validation_error),
        (Exception, _internal),
    ):
        app.add_exception_handler(exc, handler)
    app.openapi = lambda: _openapi(app)
    return ServingMiddleware(app, settings, dp)
