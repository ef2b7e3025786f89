"""KServe V2 / Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), with the standard gRPC health
service beside it.

This module alone converts between the V2 protobuf messages and :mod:`serving.tensors`; every RPC calls
:class:`serving.dataplane.DataPlane`. Inputs come either all as ``raw_input_contents`` (what tritonclient sends) or
all as typed ``contents``; the answer uses the same form (raw when any output has no typed field, i.e. FP16).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import weakref
from math import prod

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelyard.errors import ModelyardError
from serving.auth import METADATA, PROBE, PROTECTED
from serving.batching import QueueFull
from serving.errors import BadRequest, NotFound, ServingError
from serving.logs import new_request_id, request_id
from serving.protocols.proto import grpc_predict_v2_pb2 as pb
from serving.protocols.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from serving.tensors import (
    NUMPY_DTYPES,
    InferRequest,
    InferResponse,
    RequestedOutput,
    Tensor,
    check_datatype,
    check_shape,
    from_raw,
    to_raw,
)

log = logging.getLogger("serving.grpc")

SERVICE = "inference.GRPCInferenceService"
HEALTH_POLL_S = 0.5
"""How often the health service re-reads ``DataPlane.ready()`` (readiness has no change events)."""

CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""The typed ``InferTensorContents`` field of each datatype, as the proto's comments assign them; FP16 has none
and travels only raw."""
_FIELD_DTYPES = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype("<i4"),
    "int64_contents": np.dtype("<i8"),
    "uint_contents": np.dtype("<u4"),
    "uint64_contents": np.dtype("<u8"),
    "fp32_contents": np.dtype("<f4"),
    "fp64_contents": np.dtype("<f8"),
}
"""The numpy dtype of each numeric contents field's protobuf type (wider than INT8/16 and UINT8/16)."""

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class GrpcStartupError(ModelyardError):
    """The gRPC endpoint cannot listen where it was told to."""


# ------------------------------------------------------------ proto -> tensors
def decode_request(req: pb.ModelInferRequest) -> tuple[InferRequest, bool]:
    """The request's tensors, and whether they came as ``raw_input_contents`` (then the answer is raw too)."""
    raw = len(req.raw_input_contents) > 0
    if raw and len(req.raw_input_contents) != len(req.inputs):
        raise BadRequest(
            f"raw_input_contents: {len(req.raw_input_contents)} buffers for {len(req.inputs)} inputs; "
            "send one per input, in the order of inputs"
        )
    inputs = [decode_input(t, i, req.raw_input_contents[i] if raw else None) for i, t in enumerate(req.inputs)]
    outputs = [
        RequestedOutput(o.name, decode_parameters(o.parameters, f"outputs[{i}] '{o.name}'.parameters"))
        for i, o in enumerate(req.outputs)
    ]
    return InferRequest(inputs, outputs or None, req.id or None, decode_parameters(req.parameters, "parameters")), raw


def decode_input(t: pb.ModelInferRequest.InferInputTensor, i: int, raw: bytes | None) -> Tensor:
    where = f"inputs[{i}] '{t.name}'"
    datatype = check_datatype(t.datatype, where)
    shape = check_shape(list(t.shape), where)
    if raw is None:
        tensor = typed_tensor(t, datatype, shape, where)
    elif t.HasField("contents"):
        raise BadRequest(f"{where}.contents: must be empty when the request sends raw_input_contents")
    else:
        tensor = from_raw(t.name, datatype, shape, raw, where)
    tensor.parameters = decode_parameters(t.parameters, f"{where}.parameters")
    return tensor


def typed_tensor(t: pb.ModelInferRequest.InferInputTensor, datatype: str, shape: list[int], where: str) -> Tensor:
    """A tensor from the contents field its datatype owns; values the datatype cannot hold are a 400."""
    field = CONTENTS.get(datatype)
    if field is None:
        raise BadRequest(f"{where}: {datatype} has no typed contents field; send it in raw_input_contents")
    other = [f.name for f, _ in t.contents.ListFields() if f.name != field]
    if other:
        raise BadRequest(f"{where}.contents: datatype {datatype} takes {field}, got {other[0]}")
    values = getattr(t.contents, field)
    if len(values) != prod(shape):
        raise BadRequest(f"{where}: {len(values)} values in contents.{field} do not fill shape {shape}")
    if datatype == "BYTES":
        return Tensor(t.name, datatype, shape, np.array(list(values), dtype=object))
    arr = np.fromiter(values, _FIELD_DTYPES[field], len(values))
    dtype = NUMPY_DTYPES[datatype]
    if arr.dtype != dtype and arr.size:
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise BadRequest(f"{where}.contents.{field}: values outside {datatype}'s range [{info.min}, {info.max}]")
    return Tensor(t.name, datatype, shape, arr.astype(dtype).reshape(shape))


def decode_parameters(params, where: str) -> dict:
    out = {}
    for key, p in params.items():
        choice = p.WhichOneof("parameter_choice")
        if choice is None:
            raise BadRequest(
                f"{where}['{key}']: no value; V2 gRPC parameters are bool_param, int64_param or string_param"
            )
        out[key] = getattr(p, choice)
    return out


# ------------------------------------------------------------ tensors -> proto
def encode_response(resp: InferResponse, raw: bool) -> pb.ModelInferResponse:
    raw = raw or any(t.datatype not in CONTENTS for t in resp.outputs)
    out = pb.ModelInferResponse(model_name=resp.model_name, model_version=resp.model_version, id=resp.id)
    encode_parameters(out.parameters, resp.parameters)
    for t in resp.outputs:
        o = out.outputs.add(name=t.name, datatype=t.datatype, shape=[int(d) for d in t.shape])
        encode_parameters(o.parameters, t.parameters)
        if raw:
            out.raw_output_contents.append(to_raw(t))
        else:
            values = t.data.ravel().tolist()
            if t.datatype == "BYTES":
                values = [v.encode() if isinstance(v, str) else bytes(v) for v in values]
            getattr(o.contents, CONTENTS[t.datatype]).extend(values)
    return out


def encode_parameters(target, params: dict) -> None:
    """A parameters dict into an ``InferParameter`` map; a value of another type than bool, int or str is a bug
    of the server (a TypeError, answered INTERNAL)."""
    for key, value in params.items():
        if isinstance(value, bool):
            target[key].bool_param = value
        elif isinstance(value, int):
            target[key].int64_param = value
        elif isinstance(value, str):
            target[key].string_param = value
        else:
            raise TypeError(f"parameter {key!r}: {type(value).__name__} has no V2 gRPC parameter type")


def tensor_metadata(specs: list[dict]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    """The fields the proto has; the REST metadata's other keys stay out."""
    return [
        pb.ModelMetadataResponse.TensorMetadata(name=s["name"], datatype=s["datatype"], shape=s["shape"]) for s in specs
    ]


# ------------------------------------------------------------ the service
def status_of(e: ServingError) -> tuple[grpc.StatusCode, str] | None:
    """The gRPC status for a ServingError, None for a status this protocol has no code for (an internal error)."""
    if isinstance(e, QueueFull):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, e.message
    code = _CODES.get(e.status)
    return None if code is None else (code, e.message)


def rpc(method=None, *, scope: str = PROTECTED):
    """One V2 RPC: the request id from ``x-request-id`` metadata (else a new one) for the logs and the prediction
    log, sent back as ``x-request-id`` trailing metadata, the API key
    checked as its scope needs (server liveness and readiness are probes: never; metadata: unless public, as on
    REST), and every error answered with its gRPC status (internal ones logged, their details kept out)."""
    if method is None:
        return functools.partial(rpc, scope=scope)

    @functools.wraps(method)
    async def handler(self: V2Servicer, request, context: grpc.aio.ServicerContext):
        metadata = {k.lower(): v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        token = request_id.set(metadata.get("x-request-id", "")[:128] or new_request_id())
        try:
            self.dataplane.authorize(metadata, scope)
            return await method(self, parse(request, method.__name__))
        except ServingError as e:
            status = status_of(e)
            if status is None:
                log.exception("gRPC %s failed", method.__name__)
        except Exception:
            log.exception("gRPC %s failed", method.__name__)
            status = None
        finally:
            rid = request_id.get()
            request_id.reset(token)
            context.set_trailing_metadata((("x-request-id", rid),))  # as REST's X-Request-Id header
        await context.abort(*(status or (grpc.StatusCode.INTERNAL, f"internal error; request id {rid}")))

    return handler


def parse(raw: bytes, rpc_name: str):
    """The request message of an RPC from its bytes: parsed here, not by grpc, so that bytes that are no such
    message are INVALID_ARGUMENT (grpc answers UNKNOWN when its own deserializer fails)."""
    cls = getattr(pb, rpc_name + "Request")
    try:
        return cls.FromString(raw)
    except DecodeError:
        raise BadRequest(f"request: not a valid {cls.DESCRIPTOR.full_name} message") from None


def generic_handler(servicer: V2Servicer) -> grpc.GenericRpcHandler:
    """The V2 service with raw request bytes handed to the servicer (see :func:`parse`)."""
    handlers = {}
    for name in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name:
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name), response_serializer=getattr(pb, name + "Response").SerializeToString
        )
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


class V2Servicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, dataplane):
        self.dataplane = dataplane

    @rpc(scope=PROBE)
    async def ServerLive(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.dataplane.live())

    @rpc(scope=PROBE)
    async def ServerReady(self, request: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.dataplane.ready())

    @rpc(scope=METADATA)
    async def ModelReady(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self.dataplane.model_ready(request.name, request.version or None))

    @rpc(scope=METADATA)
    async def ServerMetadata(self, request: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        m = self.dataplane.server_metadata()
        return pb.ServerMetadataResponse(name=m["name"], version=m["version"], extensions=m["extensions"])

    @rpc(scope=METADATA)
    async def ModelMetadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        m = self.dataplane.model_metadata(request.name, request.version or None)
        return pb.ModelMetadataResponse(
            name=m["name"],
            versions=m["versions"],
            platform=m["platform"],
            inputs=tensor_metadata(m["inputs"]),
            outputs=tensor_metadata(m["outputs"]),
        )

    @rpc
    async def ModelInfer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        if not request.model_name:
            raise BadRequest("model_name: field required")
        version = request.model_version or None
        routed = self.dataplane.admit(request.model_name, version, None, "v2_infer", "grpc")
        try:
            req, raw = decode_request(request)
        except ServingError as e:
            self.dataplane.refused(request.model_name, "v2_infer", "grpc", e.status)
            raise
        resp = await self.dataplane.infer(req, request.model_name, version, "grpc", routed)
        return encode_response(resp, raw)

    @rpc
    async def RepositoryModelLoad(self, request: pb.RepositoryModelLoadRequest) -> pb.RepositoryModelLoadResponse:
        await self._admin().load_model(request.model_name)
        return pb.RepositoryModelLoadResponse(model_name=request.model_name, isLoaded=True)

    @rpc
    async def RepositoryModelUnload(self, request: pb.RepositoryModelUnloadRequest) -> pb.RepositoryModelUnloadResponse:
        await self._admin().unload_model(request.model_name)
        return pb.RepositoryModelUnloadResponse(model_name=request.model_name, isUnloaded=True)

    def _admin(self):
        """The data plane, when admin routes are on (as REST's repository load / unload)."""
        if not self.dataplane.settings.enable_admin:
            raise NotFound("admin RPCs are disabled; start the server with --enable-admin (MODELYARD_ENABLE_ADMIN=1)")
        return self.dataplane


# ------------------------------------------------------------ health
class Health:
    """The standard ``grpc.health.v1`` service: "" and the V2 service are SERVING while the data plane is ready,
    NOT_SERVING before and from shutdown on. Never behind the API key (probes have none)."""

    def __init__(self, dataplane):
        self.dataplane = dataplane
        self.servicer = health.aio.HealthServicer()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self._set(False)
        self._task = asyncio.create_task(self._follow(), name="grpc-health")

    async def _set(self, ready: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE):
            await self.servicer.set(service, status)

    async def _follow(self) -> None:
        last = False
        while True:
            await asyncio.sleep(HEALTH_POLL_S)
            try:
                ready = bool(self.dataplane.ready())
            except Exception:
                log.exception("DataPlane.ready() failed; gRPC health says NOT_SERVING")
                ready = False
            if ready != last:
                await self._set(ready)
                last = ready

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.servicer.enter_graceful_shutdown()


_health: weakref.WeakKeyDictionary[grpc.aio.Server, Health] = weakref.WeakKeyDictionary()


async def start_grpc_server(dataplane, settings) -> grpc.aio.Server | None:
    """The V2 gRPC server and its health service, listening on ``settings.host:settings.grpc_port`` (None when
    ``grpc_port`` is 0), in the running event loop."""
    if settings.grpc_port == 0:
        return None
    limit = settings.grpc_max_message_bytes
    # so_reuseport off: with it (gRPC's default) a second server on a busy port would share it silently; on with
    # workers, whose supervisor checked the port (check_port) and starts one gRPC server per worker on it
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", int(settings.worker_count() > 1)),
        ]
    )
    server.add_generic_rpc_handlers((generic_handler(V2Servicer(dataplane)),))
    checker = Health(dataplane)
    health_pb2_grpc.add_HealthServicer_to_server(checker.servicer, server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    address = f"{host}:{settings.grpc_port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as e:  # what grpcio does now; older versions returned 0
        raise bind_error(address, settings.grpc_port, str(e)) from None
    if bound == 0:
        raise bind_error(address, settings.grpc_port, "add_insecure_port returned 0")
    await checker.start()
    await server.start()
    _health[server] = checker
    log.info("gRPC listening", extra={"address": address})
    return server


def check_port(settings) -> None:
    """Before the server starts: the gRPC port can be bound (else one clear line, not a lifespan traceback)."""
    if settings.grpc_port == 0:
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((settings.host, settings.grpc_port))
        except OSError as e:
            raise bind_error(f"{settings.host}:{settings.grpc_port}", settings.grpc_port, e.strerror) from None


def bind_error(address: str, port: int, detail: str) -> GrpcStartupError:
    return GrpcStartupError(
        f"gRPC cannot listen on {address} (grpc_port {port}, MODELYARD_GRPC_PORT): the port is "
        f"in use or the address is not this machine's ({detail}); 0 turns the gRPC endpoint off"
    )


async def stop_grpc_server(server: grpc.aio.Server | None, grace_s: float) -> None:
    """Drain: health says NOT_SERVING at once, new RPCs are refused, RPCs in flight get ``grace_s`` seconds."""
    if server is None:
        return
    await _health.pop(server).stop()
    await server.stop(grace_s)
