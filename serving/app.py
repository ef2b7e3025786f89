"""The FastAPI app: TF Serving REST (``/v1``) and KServe V2 / Open Inference Protocol (``/v2``) routes,
thin over one handler layer. Bodies are parsed with orjson and answered with orjson; errors are
``{"error": "..."}`` with 4xx for anything the client can fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

import modelyard
from modelyard.gpu import gpu_facts
from modelyard.settings import Settings
from serving import types as wire
from serving.batching import Retired
from serving.errors import BadRequest, NotFound, ServingError
from serving.logs import request_id
from serving.metrics import Metrics
from serving.registry import Registry, Servable

log = logging.getLogger("serving.app")
access = logging.getLogger("serving.access")

PLATFORM = {"onnx": "onnxruntime_onnx", "tflite": "tflite", "savedmodel": "tensorflow_savedmodel"}
TF_DTYPE = {"float32": "DT_FLOAT", "int64": "DT_INT64", "int32": "DT_INT32", "int8": "DT_INT8", "uint8": "DT_UINT8",
            "string": "DT_STRING"}


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json", headers=headers)


def error_response(message: str, status: int, headers: dict | None = None) -> Response:
    return json_response({"error": message}, status, headers)


class _BodyTooLarge(Exception):
    pass


_NO_HEADERS: Mapping[str, str] = {}


Handler = Callable[..., Awaitable[bytes]]
"""A predict handler: ``(body, headers, **route_params) -> JSON bytes``; raises ServingError for 4xx/5xx."""


class PredictRoutes:
    """The predict and infer routes, matched on the raw path and answered in front of FastAPI.

    These are the only routes on the hot path. Answering them here skips FastAPI's per-request machinery
    (dependency solving, Request objects, response classes), which cost more than the model itself for models
    this small (see README, Benchmark). FastAPI still documents them (:func:`_openapi`) and serves the rest.
    """

    _PATTERNS = (
        ("tfs", re.compile(r"/v1/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?"
                           r":predict")),
        ("v2", re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer")),
    )

    _CACHE_SIZE = 4096

    def __init__(self, predict_tfs: Handler, infer_v2: Handler):
        self._handlers = {"tfs": predict_tfs, "v2": infer_v2}
        self._matched: dict[str, tuple[Handler, dict] | None] = {}
        """Paths seen, matched or not (a few per model); emptied when full, so any path costs one regex at most."""

    def match(self, method: str, path: str) -> tuple[Handler, dict] | None:
        if method != "POST":
            return None
        try:
            return self._matched[path]
        except KeyError:
            pass
        found = None
        for kind, pattern in self._PATTERNS:
            m = pattern.fullmatch(path)
            if m is not None:
                found = self._handlers[kind], {k: v for k, v in m.groupdict().items() if v is not None}
                break
        if len(self._matched) >= self._CACHE_SIZE:
            self._matched.clear()
        self._matched[path] = found
        return found


class ServingMiddleware:
    """Request id, body size limit, in-flight gauge, one JSON access-log line per request, and the predict
    routes' fast path (pure ASGI)."""

    def __init__(self, app, settings: Settings, metrics: Metrics, routes: PredictRoutes):
        self.app = app
        self.limit = settings.max_body_bytes
        self.metrics = metrics
        self.access_log = settings.access_log
        self.routes = routes
        self.headers_needed = bool(settings.api_key)
        """Handlers read headers only to check the API key: without one, no Headers object is built."""
        self.in_flight = 0
        metrics.in_flight.set_function(lambda: self.in_flight)  # read at scrape: no lock per request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = None
        length = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                rid = v.decode("latin-1")[:128]
            elif k == b"content-length":
                length = v
        rid = rid or os.urandom(16).hex()
        token = request_id.set(rid)
        t0 = time.perf_counter()
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        self.in_flight += 1
        try:
            fast = self.routes.match(scope["method"], scope["path"])
            if length is not None and length.isdigit() and int(length) > self.limit:
                status = await self._too_large(send, self.limit, rid_header)
            elif fast is None:
                status = await self._framework(scope, receive, send, rid_header)
            else:
                status = await self._answer(*fast, scope, receive, send, rid_header)
        finally:
            self.in_flight -= 1
        if self.access_log:
            access.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status,
                                          "duration_ms": round((time.perf_counter() - t0) * 1000, 3)})
        request_id.reset(token)

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
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge:
            if not started[0]:
                return await self._too_large(send, limit, rid_header)
        return status[0]

    async def _answer(self, handler: Handler, params: dict, scope, receive, send, rid_header) -> int:
        """The fast path: read the body (within the limit), run the handler, send its JSON."""
        chunks = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 499
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._too_large(send, self.limit, rid_header)
            chunks.append(chunk)
            more = message.get("more_body", False)
        headers = {}
        try:
            body = await handler(chunks[0] if len(chunks) == 1 else b"".join(chunks),
                                 Headers(scope=scope) if self.headers_needed else _NO_HEADERS, **params)
            status = 200
        except ServingError as e:
            status, body, headers = e.status, orjson.dumps({"error": e.message}), e.headers
        except Exception:  # noqa: BLE001 - a bug must not take the connection down without an answer
            log.exception("unhandled error")
            status, body = 500, orjson.dumps({"error": f"internal error; request id {request_id.get()}"})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                                rid_header,
                                *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())]})
        await send({"type": "http.response.body", "body": body})
        return status

    @staticmethod
    async def _too_large(send, limit: int, rid_header) -> int:
        body = orjson.dumps({"error": f"request body is larger than the limit of {limit} bytes "
                                      "(MODELYARD_MAX_BODY_BYTES); send fewer instances per request"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), rid_header]})
        await send({"type": "http.response.body", "body": body})
        return 413


def _body_doc(model, examples: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": wire.inline_schema(model), "examples": examples}}}}


_ERRORS = {400: {"model": wire.ErrorResponse, "description": "bad input; the message names the field"},
           401: {"model": wire.ErrorResponse, "description": "missing or wrong API key"},
           404: {"model": wire.ErrorResponse, "description": "unknown model, version or label"},
           413: {"model": wire.ErrorResponse, "description": "body too large"},
           503: {"model": wire.ErrorResponse, "description": "loading, or queue full (see Retry-After)"}}


_TFS_DOC = dict(tags=["TF Serving REST"], responses={200: {"model": wire.PredictResponse}, **_ERRORS},
                openapi_extra=_body_doc(wire.PredictRequest, wire.TFS_EXAMPLES))
_V2_DOC = dict(tags=["KServe V2"], responses={200: {"model": wire.InferenceResponse}, **_ERRORS},
               openapi_extra=_body_doc(wire.InferenceRequest, wire.V2_EXAMPLES))
_PREDICT_DOCS = APIRouter()
"""Declarations of the routes :class:`PredictRoutes` answers, for the OpenAPI schema only: never mounted."""


@_PREDICT_DOCS.post("/v1/models/{name}:predict", summary="Predict (latest version, or the traffic split)", **_TFS_DOC)
def _tfs_predict(name: str): ...


@_PREDICT_DOCS.post("/v1/models/{name}/versions/{version}:predict", summary="Predict with one version", **_TFS_DOC)
def _tfs_predict_version(name: str, version: str): ...


@_PREDICT_DOCS.post("/v1/models/{name}/labels/{label}:predict", summary="Predict with a labelled version",
                    **_TFS_DOC)
def _tfs_predict_label(name: str, label: str): ...


@_PREDICT_DOCS.post("/v2/models/{name}/infer", summary="Infer (latest version, or the traffic split)", **_V2_DOC)
def _v2_infer(name: str): ...


@_PREDICT_DOCS.post("/v2/models/{name}/versions/{version}/infer", summary="Infer with one version", **_V2_DOC)
def _v2_infer_version(name: str, version: str): ...


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                         routes=[*_PREDICT_DOCS.routes, *app.routes])
    return app.openapi_schema


def create_app(settings: Settings) -> ServingMiddleware:
    """The ASGI app: :class:`ServingMiddleware` (the predict fast path) in front of the FastAPI app (``.app``),
    outside FastAPI's own middleware stack so that the hot path pays for none of it."""
    metrics = Metrics()
    registry = Registry(settings, metrics)
    api_key = settings.api_key.encode() if settings.api_key else None
    max_instances = settings.max_instances

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        metrics.ready.set(0)
        initial = asyncio.create_task(registry.poll(), name="initial-load")
        poller = asyncio.create_task(_poll_after(initial), name="poll-repository")
        try:
            yield
        finally:
            poller.cancel()
            initial.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await initial
            await registry.close()
            log.info("server stopped; every queued request was answered")

    async def _poll_after(initial: asyncio.Task) -> None:
        with contextlib.suppress(Exception):
            await initial
        log.info("initial load finished", extra={"ready": registry.ready(), "models": {
            n: sorted(st.versions) for n, st in registry.models.items()}})
        gc.freeze()  # what startup built (models, routes, imports) is never garbage: keep collections from rescanning it
        await registry.run_polling()

    app = FastAPI(title="modelyard serving", version=modelyard.__version__, lifespan=lifespan,
                  description="IMDB, Reuters and Boston housing models over TF Serving REST (`/v1`) and "
                              "KServe V2 / Open Inference Protocol (`/v2`). Text models take raw text, token ids "
                              "or multi-hot vectors; Boston takes its 13 features by name or as a list.")
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.settings = settings

    # ------------------------------------------------------------ errors
    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, e: ServingError):
        return error_response(e.message, e.status, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        msg = e.detail if isinstance(e.detail, str) else str(e.detail)
        if e.status_code == 404 and msg == "Not Found":
            msg = f"no route {request.method} {request.url.path}; see /docs"
        return error_response(msg, e.status_code, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        first = e.errors()[0]
        return error_response(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, e: Exception):
        log.exception("unhandled error")
        return error_response(f"internal error; request id {request_id.get()}", 500)

    # ------------------------------------------------------------ handler layer
    def check_key(headers: Mapping[str, str]) -> None:
        if api_key is None:
            return
        given = headers.get("x-api-key")
        if given is None:
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:]
        if given is None or not hmac.compare_digest(given.encode(), api_key):
            raise ServingError("missing or invalid API key: send it as 'X-API-Key: <key>' or "
                               "'Authorization: Bearer <key>'", 401, {"WWW-Authenticate": "Bearer"})

    def parse_json(body: bytes) -> Any:
        if not body:
            raise BadRequest("body: empty; send a JSON object")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"body: malformed JSON: {e}") from None

    async def run(primary: Servable, shadow: Servable | None, name: str, version, label, x):
        try:
            y = await primary.batcher.submit(x)
        except Retired:  # the version was unloaded between routing and queueing: route again
            primary, shadow = registry.resolve(name, version, label)
            y = await primary.batcher.submit(x)
        if shadow is not None:
            registry.mirror(primary, shadow, x, y)
        return primary, y

    def count(name: str, s: Servable | None, route: str, status: int, t0: float) -> None:
        known = name in registry.models
        model = name if known else "_unknown"
        metrics.child(metrics.requests, model, str(s.version) if s else "", s.variant_name if s else "", route,
                      str(status)).inc()
        if known:
            metrics.child(metrics.request_latency, model, route).observe(time.perf_counter() - t0)

    async def predict_tfs(raw: bytes, headers: Mapping[str, str], name: str, version=None, label=None) -> bytes:
        t0 = time.perf_counter()
        primary = None
        try:
            check_key(headers)
            body = parse_json(raw)
            primary, shadow = registry.resolve(name, version, label)
            decoded, columnar = primary.codec.decode_tfs(body, max_instances)
            top_k = body.get("top_k")
            if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
                raise BadRequest("top_k: must be a positive integer")
            primary, y = await run(primary, shadow, name, version, label, decoded.x)
            metrics.observe_inputs(name, primary.codec, decoded)
            metrics.observe_outputs(name, primary.codec, y)
            out = primary.codec.encode_tfs(y, columnar, top_k)
            resp = orjson.dumps({"outputs" if columnar else "predictions": out, "model": name,
                                 "version": primary.version, "variant": primary.variant_name},
                                option=orjson.OPT_SERIALIZE_NUMPY)
            count(name, primary, "v1_predict", 200, t0)
            return resp
        except ServingError as e:
            count(name, primary, "v1_predict", e.status, t0)
            raise

    async def infer_v2(raw: bytes, headers: Mapping[str, str], name: str, version=None) -> bytes:
        t0 = time.perf_counter()
        primary = None
        try:
            check_key(headers)
            body = parse_json(raw)
            primary, shadow = registry.resolve(name, version)
            decoded = primary.codec.decode_v2(body, max_instances)
            params = body.get("parameters") or {}
            top_k = params.get("top_k") if isinstance(params, dict) else None
            if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
                raise BadRequest("parameters.top_k: must be a positive integer")
            requested = body.get("outputs")
            if requested is not None:
                if not isinstance(requested, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                              for o in requested):
                    raise BadRequest("outputs: must be a list of {\"name\": ...}")
                requested = [o["name"] for o in requested]
            primary, y = await run(primary, shadow, name, version, None, decoded.x)
            metrics.observe_inputs(name, primary.codec, decoded)
            metrics.observe_outputs(name, primary.codec, y)
            outputs = primary.codec.encode_v2(y, requested, top_k)
            rid = body.get("id")
            resp = orjson.dumps({"model_name": name, "model_version": str(primary.version),
                                 "id": rid if isinstance(rid, str) else request_id.get(),
                                 "parameters": {"variant": primary.variant_name, "runtime": primary.runtime.name,
                                                "device": primary.runtime.device},
                                 "outputs": outputs}, option=orjson.OPT_SERIALIZE_NUMPY)
            count(name, primary, "v2_infer", 200, t0)
            return resp
        except ServingError as e:
            count(name, primary, "v2_infer", e.status, t0)
            raise

    def version_status(name: str, version=None, label=None) -> dict:
        st = registry.state(name)
        if label is not None or version is not None:
            s, _ = registry.resolve(name, version, label)
            versions = [s.version]
        else:
            versions = sorted(set(st.versions) | set(st.failed) | st.loading, reverse=True)
        out = []
        for v in versions:
            if v in st.versions:
                out.append({"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}})
            elif v in st.loading:
                out.append({"version": str(v), "state": "LOADING", "status": {"error_code": "OK", "error_message": ""}})
            else:
                out.append({"version": str(v), "state": "END",
                            "status": {"error_code": "UNKNOWN", "error_message": st.failed[v][1]}})
        return {"model_version_status": out}

    def describe(s: Servable) -> dict:
        m = s.manifest
        p = m.preprocessing
        rt = s.runtime
        return {"task": m.task, "labels": m.labels, "variant": s.variant_name, "format": s.variant.format,
                **rt.describe(), "gpu": gpu_facts(rt.cuda.device_id) if rt.device == "cuda" else None,
                "loaded_versions": sorted(registry.models[s.name].versions),
                "variants_in_manifest": {k: v.status for k, v in m.variants.items()},
                "preprocessing": p.kind, **({"feature_names": p.feature_names} if p.kind == "tabular" else
                                            {"num_words": p.num_words}),
                "test_metrics": m.metrics, "labels_config": registry.models[s.name].config.labels}

    def tfs_metadata(name: str, version=None, label=None) -> dict:
        s, _ = registry.resolve(name, version, label) if (version or label) else (
            registry._servable(registry.state(name), registry.state(name).latest() or 0, None), None)
        sig = lambda specs: {t.name: {"dtype": TF_DTYPE.get(t.dtype, "DT_INVALID"), "name": t.name,  # noqa: E731
                                      "tensor_shape": {"dim": [{"size": str(d if d is not None else -1)}
                                                               for d in t.shape]}} for t in specs}
        return {"model_spec": {"name": name, "signature_name": "", "version": str(s.version)},
                "metadata": {"signature_def": {"signature_def": {"serving_default": {
                    "inputs": sig(s.manifest.inputs), "outputs": sig(s.manifest.outputs),
                    "method_name": "tensorflow/serving/predict"}}}},
                "modelyard": describe(s)}

    def v2_metadata(name: str, version=None) -> dict:
        st = registry.state(name)
        s = registry.resolve(name, version)[0] if version is not None else registry._servable(st, st.latest() or 0, None)
        inputs, outputs = s.codec.v2_metadata_io()
        return {"name": name, "versions": [str(v) for v in sorted(st.versions)], "platform": PLATFORM[s.runtime.name],
                "inputs": inputs, "outputs": outputs, "parameters": describe(s)}

    app.openapi = lambda: _openapi(app)

    # ------------------------------------------------------------ TF Serving REST

    @app.get("/v1/models/{name}", tags=["TF Serving REST"], summary="Model version status")
    async def tfs_status(name: str):
        return json_response(version_status(name))

    @app.get("/v1/models/{name}/versions/{version}", tags=["TF Serving REST"], summary="Version status")
    async def tfs_status_version(name: str, version: str):
        return json_response(version_status(name, version=version))

    @app.get("/v1/models/{name}/labels/{label}", tags=["TF Serving REST"], summary="Labelled version status")
    async def tfs_status_label(name: str, label: str):
        return json_response(version_status(name, label=label))

    @app.get("/v1/models/{name}/metadata", tags=["TF Serving REST"], summary="Signature and serving metadata")
    async def tfs_meta(name: str):
        return json_response(tfs_metadata(name))

    @app.get("/v1/models/{name}/versions/{version}/metadata", tags=["TF Serving REST"])
    async def tfs_meta_version(name: str, version: str):
        return json_response(tfs_metadata(name, version=version))

    @app.get("/v1/models/{name}/labels/{label}/metadata", tags=["TF Serving REST"])
    async def tfs_meta_label(name: str, label: str):
        return json_response(tfs_metadata(name, label=label))

    # ------------------------------------------------------------ KServe V2

    @app.get("/v2", tags=["KServe V2"], summary="Server metadata")
    async def v2_server():
        return json_response({"name": "modelyard", "version": modelyard.__version__, "extensions": []})

    @app.get("/v2/health/live", tags=["KServe V2"])
    async def v2_live():
        return json_response({"live": True})

    @app.get("/v2/health/ready", tags=["KServe V2"], summary="True once every model is loaded and warmed up")
    async def v2_ready():
        ready = registry.ready()
        return json_response({"ready": ready}, 200 if ready else 503)

    @app.get("/v2/models/{name}", tags=["KServe V2"], summary="Model metadata")
    async def v2_model(name: str):
        return json_response(v2_metadata(name))

    @app.get("/v2/models/{name}/versions/{version}", tags=["KServe V2"], summary="Model version metadata")
    async def v2_model_version(name: str, version: str):
        return json_response(v2_metadata(name, version))

    def _model_ready(name: str, version=None) -> Response:
        st = registry.state(name)
        if version is not None:
            registry.resolve(name, version)
        ready = bool(st.versions)
        return json_response({"name": name, "ready": ready}, 200 if ready else 503)

    @app.get("/v2/models/{name}/ready", tags=["KServe V2"])
    async def v2_model_ready(name: str):
        return _model_ready(name)

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["KServe V2"])
    async def v2_model_version_ready(name: str, version: str):
        return _model_ready(name, version)

    # ------------------------------------------------------------ admin, metrics
    def admin(request: Request) -> None:
        if not settings.enable_admin:
            raise NotFound("admin routes are disabled; start the server with --enable-admin "
                           "(MODELYARD_ENABLE_ADMIN=1)")
        check_key(request.headers)

    @app.post("/admin/reload", tags=["admin"], summary="Poll the repository now, retrying failed versions")
    async def admin_reload(request: Request):
        admin(request)
        await registry.reload()
        return json_response({n: version_status(n) for n in registry.models})

    @app.post("/admin/models/{name}/reload", tags=["admin"])
    async def admin_reload_model(request: Request, name: str):
        admin(request)
        registry.state(name)
        await registry.reload(name)
        return json_response(version_status(name))

    @app.post("/admin/models/{name}/versions/{version}/unload", tags=["admin"])
    async def admin_unload(request: Request, name: str, version: str):
        admin(request)
        if not version.isdigit():
            raise BadRequest(f"version: '{version}' is not a version number")
        await registry.unload(name, int(version))
        return json_response(version_status(name))

    @app.get("/metrics", tags=["metrics"], summary="Prometheus metrics")
    async def prometheus():
        gpus = {s.runtime.cuda.device_id for st in registry.models.values() for vs in st.versions.values()
                for s in vs.values() if s.runtime.device == "cuda"}
        for facts in filter(None, map(gpu_facts, sorted(gpus))):
            lbl = (str(facts["index"]), facts["name"])
            metrics.gpu_memory_used.labels(*lbl).set(facts["memory_used_bytes"])
            metrics.gpu_memory_total.labels(*lbl).set(facts["memory_total_bytes"])
        for st in registry.models.values():
            metrics.queue_depth.labels(st.name).set(sum(s.batcher.pending for vs in st.versions.values()
                                                        for s in vs.values() if s.batcher))
            pre = next((s.manifest.preprocessing for vs in st.versions.values() for s in vs.values()), None)
            if pre is not None and pre.kind == "multi_hot_text":
                if pre.train_mean_tokens is not None:
                    metrics.train_text_tokens.labels(st.name).set(pre.train_mean_tokens)
                if pre.train_oov_rate is not None:
                    metrics.train_oov.labels(st.name).set(pre.train_oov_rate)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return ServingMiddleware(app, settings, metrics, PredictRoutes(predict_tfs, infer_v2))
