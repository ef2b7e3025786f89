"""REST handlers of both protocols, over the data plane.

The inference handlers (:func:`tfs_call`, :func:`v2_infer`) take the raw body and the few headers they need and
are answered by the fast path in front of FastAPI (``serving/app.py``), after its admission control (API key,
model, queue room); the others are FastAPI endpoints that read the data plane from ``request.app.state``, listed
in ``serving/app.py:ROUTES``. The API key is checked in front of every route (``serving/auth.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.codecs import Decoded, ModelCodec
from serving.dataplane import DataPlane, Routed
from serving.errors import BadRequest, NotFound, ServingError
from serving.protocols import fast_ids, tfs, v2
from serving.protocols.http import parse_json
from serving.routing import parse_version
from serving.servables import Servable


@dataclass(slots=True)
class Reply:
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_type: bytes = b"application/json"


def json_response(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _dp(request: Request) -> DataPlane:
    return request.app.state.dataplane


# ------------------------------------------------------------------ inference (the fast path)
@dataclass(frozen=True, slots=True)
class InferenceRoute:
    """An inference path parsed (``serving/app.py`` keeps it per path): its handler and what the path names."""

    handler: Callable[..., Awaitable[Reply]]
    """``handler(dataplane, body, headers, routed, route) -> Reply``; raises ServingError."""
    route: str
    """The ``route`` label of its metrics: ``v1_predict``, ``v1_classify``, ``v1_regress``, ``v2_infer``."""
    name: str
    version: str | None = None
    label: str | None = None
    method: str | None = None
    """TF Serving's ``predict``, ``classify`` or ``regress``."""


def tfs_call(
    dp: DataPlane, body: bytes, headers: Mapping[str, str], routed: Routed | None, route: InferenceRoute
) -> Awaitable[Reply]:
    """``:predict``, ``:classify`` or ``:regress``; the version and variant that answered are in headers.
    Not a coroutine itself: it hands back the data plane's, one coroutine less per request. A ``:predict`` of
    token-id instances is read in one step (:mod:`serving.protocols.fast_ids`), any other body the general way."""
    if route.method == "predict":
        rows = fast_ids.id_rows(body, dp.max_instances)
        if rows is not None:
            return dp.predict(
                route.name,
                route.version,
                route.label,
                route.route,
                "rest",
                _decode_ids,
                _encode_rows,
                (body, rows),
                routed,
            )
    try:
        obj = parse_json(body)
    except ServingError as e:
        dp.refused(route.name, route.route, "rest", e.status)
        raise
    decode, encode = _TFS_HOOKS[route.method]
    return dp.predict(route.name, route.version, route.label, route.route, "rest", decode, encode, obj, routed)


def _decode_ids(codec: ModelCodec, read: tuple[bytes, list[np.ndarray]], max_instances: int) -> Decoded:
    body, rows = read
    if codec.kind != "text":  # ids for a model that takes none: the general reader says what it takes
        return tfs.decode_predict(codec, parse_json(body), max_instances)
    return Decoded(codec.id_rows(rows, "instances", ".ids"))


def _encode_rows(s: Servable, y: np.ndarray, read) -> Reply:
    return Reply(orjson.dumps({"predictions": y.tolist()}), s.version_headers)


def _decode_classify(codec: ModelCodec, obj, max_instances: int) -> Decoded:
    tfs.check_method(codec, "classify")
    return tfs.decode_examples(codec, obj, "classify", max_instances)


def _decode_regress(codec: ModelCodec, obj, max_instances: int) -> Decoded:
    tfs.check_method(codec, "regress")
    return tfs.decode_examples(codec, obj, "regress", max_instances)


def _encode_predict(s: Servable, y: np.ndarray, obj: dict) -> Reply:
    return Reply(orjson.dumps(tfs.encode_predict(y, obj)), s.version_headers)


def _encode_classify(s: Servable, y: np.ndarray, obj: dict) -> Reply:
    return Reply(orjson.dumps(tfs.encode_classify(s.codec, y)), s.version_headers)


def _encode_regress(s: Servable, y: np.ndarray, obj: dict) -> Reply:
    return Reply(orjson.dumps(tfs.encode_regress(s.codec, y)), s.version_headers)


_TFS_HOOKS = {
    "predict": (tfs.decode_predict, _encode_predict),
    "classify": (_decode_classify, _encode_classify),
    "regress": (_decode_regress, _encode_regress),
}
"""The data plane's ``decode`` and ``encode`` hooks of each TF Serving method (``obj``: the parsed body)."""


async def v2_infer(
    dp: DataPlane, body: bytes, headers: Mapping[str, str], routed: Routed | None, route: InferenceRoute
) -> Reply:
    """V2 infer, JSON or with binary tensors (Triton's extension) both ways."""
    try:
        req = v2.parse_infer(body, headers.get(v2.HEADER_LENGTH))
    except ServingError as e:
        dp.refused(route.name, route.route, "rest", e.status)
        raise
    resp = await dp.infer(req, route.name, route.version, "rest", routed)
    out, header_length = v2.encode_infer(resp, req.parameters.get("binary_data_output") is True)
    if header_length is None:
        return Reply(out)
    return Reply(out, [(v2.HEADER_LENGTH.encode(), b"%d" % header_length)], b"application/octet-stream")


# ------------------------------------------------------------------ TF Serving: status, metadata
async def tfs_status(request: Request, name: str, version: str | None = None, label: str | None = None):
    return json_response(_dp(request).version_status(name, version, label))


async def tfs_metadata(request: Request, name: str, version: str | None = None, label: str | None = None):
    dp = _dp(request)
    s = dp.servable(name, version, label)
    return json_response(
        {
            "model_spec": {"name": name, "signature_name": "", "version": str(s.version)},
            "metadata": {
                "signature_def": {"signature_def": tfs.signature_defs(s.codec, s.manifest.inputs, s.manifest.outputs)}
            },
            "modelyard": {**dp.describe(s), "instances": tfs.INSTANCES},
        }
    )


# ------------------------------------------------------------------ KServe V2: health, metadata
async def v2_server(request: Request):
    return json_response(_dp(request).server_metadata())


async def v2_live(request: Request):
    return json_response({"live": _dp(request).live()})


async def v2_ready(request: Request):
    ready = _dp(request).ready()
    return json_response({"ready": ready}, 200 if ready else 503)


async def v2_model(request: Request, name: str, version: str | None = None):
    return json_response(_dp(request).model_metadata(name, version))


async def v2_model_ready(request: Request, name: str, version: str | None = None):
    ready = _dp(request).model_ready(name, version)
    return json_response({"name": name, "ready": ready}, 200 if ready else 503)


# ------------------------------------------------------------------ Triton extensions
async def v2_model_config(request: Request, name: str, version: str | None = None):
    return json_response(_dp(request).model_config(name, version))


async def v2_model_stats(request: Request, name: str | None = None, version: str | None = None):
    return json_response(_dp(request).model_statistics(name, version))


async def v2_repository_index(request: Request):
    body = await request.body()
    obj = parse_json(body) if body else {}
    ready = obj.get("ready", False) if isinstance(obj, Mapping) else None
    if not isinstance(ready, bool):
        raise BadRequest('body: must be {"ready": true|false} or empty')
    return json_response(_dp(request).repository_index(ready))


def _admin(request: Request) -> DataPlane:
    """The data plane, when admin routes are on (the API key is checked in front of every route)."""
    dp = _dp(request)
    if not dp.settings.enable_admin:
        raise NotFound("admin routes are disabled; start the server with --enable-admin (MODELYARD_ENABLE_ADMIN=1)")
    return dp


async def v2_repository_load(request: Request, name: str):
    await _admin(request).load_model(name)
    return json_response({})


async def v2_repository_unload(request: Request, name: str):
    await _admin(request).unload_model(name)
    return json_response({})


# ------------------------------------------------------------------ admin, metrics
async def admin_reload(request: Request):
    dp = _admin(request)
    await dp.registry.reload()
    return json_response({n: dp.version_status(n) for n in dp.registry.models})


async def admin_reload_model(request: Request, name: str):
    dp = _admin(request)
    dp.registry.state(name)
    await dp.registry.reload(name)
    return json_response(dp.version_status(name))


async def admin_unload(request: Request, name: str, version: str):
    dp = _admin(request)
    await dp.registry.unload(name, parse_version(version))
    return json_response(dp.version_status(name))


async def prometheus(request: Request):
    dp = _dp(request)
    dp.sample_gauges()
    return Response(generate_latest(dp.metrics.exposition), media_type=CONTENT_TYPE_LATEST)
