"""The KServe V2 gRPC endpoint against a fake data plane: an in-process server on uvloop (as under uvicorn), called
with the generated stub (typed and raw contents, every malformed case) and with tritonclient.grpc."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from loadtests.process import free_port
from modelyard.settings import Settings
from serving.batching import QueueFull
from serving.errors import BadRequest, NotFound, ServingError, Unavailable
from serving.protocols import grpc_v2
from serving.protocols.proto import grpc_predict_v2_pb2 as pb
from serving.protocols.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from serving.tensors import InferResponse, Tensor

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
Code = grpc.StatusCode


class FakeDataPlane:
    """Echoes every input back as ``<name>_out`` and records what the servicer handed it."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.is_ready, self.api_key, self.error, self.delay = False, None, None, 0.0
        self.requests, self.headers, self.extra_outputs, self.refusals, self.scopes = [], [], [], [], []
        self.out_parameters = {"variant": "onnx_fp32", "rows": 2, "cached": False}
        self.settings, self.repository_calls = Settings(), []

    def live(self):
        return True

    def ready(self):
        return self.is_ready

    def model_ready(self, name, version):
        if name != "m" or version not in (None, "1"):
            raise NotFound(f"no model '{name}' version {version}")
        return True

    def server_metadata(self):
        return {"name": "fake", "version": "9.9", "extensions": ["binary_tensor_data", "statistics"]}

    def model_metadata(self, name, version):
        self.model_ready(name, version)
        return {
            "name": name,
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 13], "doc": "REST-only key"}],
            "outputs": [{"name": "price", "datatype": "FP32", "shape": [-1, 1]}],
            "parameters": {"labels": ["a", "b"], "gpu": None},
        }

    def refused(self, name, route, protocol, status):
        self.refusals.append((name, route, protocol, status))

    def admit(self, name, version, label, route, protocol):
        self.model_ready(name, version)

    def authorize(self, headers, scope="protected"):
        self.headers.append(dict(headers))
        self.scopes.append(scope)
        if (
            scope != "probe"
            and self.api_key
            and not (
                headers.get("x-api-key") == self.api_key or headers.get("authorization") == f"Bearer {self.api_key}"
            )
        ):
            raise ServingError("missing or invalid API key", 401)

    async def load_model(self, name):
        self.model_ready(name, None)
        self.repository_calls.append(("load", name))

    async def unload_model(self, name):
        self.model_ready(name, None)
        self.repository_calls.append(("unload", name))

    async def infer(self, request, name, version, protocol, routed=None):
        self.requests.append((request, name, version, protocol))
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        outs = [Tensor(f"{t.name}_out", t.datatype, t.shape, t.data, {"echo": True}) for t in request.inputs]
        outs += self.extra_outputs
        return InferResponse(name, version or "1", request.id or "generated", outs, self.out_parameters)


class Loop:
    """A uvloop event loop in a thread, so that blocking clients can call a server that runs in it."""

    def __init__(self):
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 5):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def settings(port: int) -> Settings:
    return Settings(host="127.0.0.1", grpc_port=port, grpc_max_message_bytes=1 << 20)


@pytest.fixture(scope="module")
def loop():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(grpc_v2, "HEALTH_POLL_S", 0.02)
        lp = Loop()
        yield lp
        lp.close()


@pytest.fixture(scope="module")
def running(loop):
    dp = FakeDataPlane()
    port = free_port()
    server = loop.run(grpc_v2.start_grpc_server(dp, settings(port)))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield dp, port, channel, server
    channel.close()
    loop.run(grpc_v2.stop_grpc_server(server, 0))


@pytest.fixture
def dp(running):
    running[0].reset()
    return running[0]


@pytest.fixture
def stub(running):
    return pb_grpc.GRPCInferenceServiceStub(running[2])


@pytest.fixture
def client(running):
    c = triton.InferenceServerClient(f"127.0.0.1:{running[1]}")
    yield c
    c.close()


def infer_request(*inputs, raw=None, **kw) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="m", inputs=inputs, **kw)
    req.raw_input_contents.extend(raw or [])
    return req


def typed(name, datatype, shape, **contents) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents) if contents else None
    )


def rpc_error(call, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call(*args, **kw)
    return e.value


# ------------------------------------------------------------ typed and raw round trips
def test_typed_inputs_round_trip_as_typed_outputs(dp, stub):
    req = infer_request(
        typed("features", "FP32", [2, 2], fp32_contents=[0.5, -1.25, 3.0, 1e-3]),
        typed("ids", "INT64", [1, 3], int64_contents=[1, -(2**40), 7]),
        typed("text", "BYTES", [2], bytes_contents=[b"great film", "été".encode()]),
        id="req-1",
    )
    resp = stub.ModelInfer(req)

    seen, name, version, protocol = dp.requests[0]
    assert (name, version, protocol, seen.id, seen.outputs) == ("m", None, "grpc", "req-1", None)
    f, ids, text = seen.inputs
    assert f.data.dtype == np.float32 and f.data.shape == (2, 2)
    np.testing.assert_array_equal(f.data, np.array([[0.5, -1.25], [3.0, 1e-3]], np.float32))
    assert ids.data.dtype == np.int64 and ids.data.tolist() == [[1, -(2**40), 7]]
    assert text.data.dtype == object and text.data.tolist() == [b"great film", "été".encode()]

    assert not resp.raw_output_contents
    assert (resp.model_name, resp.model_version, resp.id) == ("m", "1", "req-1")
    out = {o.name: o for o in resp.outputs}
    assert list(out["features_out"].shape) == [2, 2] and out["features_out"].datatype == "FP32"
    assert list(out["features_out"].contents.fp32_contents) == pytest.approx([0.5, -1.25, 3.0, 1e-3])
    assert list(out["ids_out"].contents.int64_contents) == [1, -(2**40), 7]
    assert list(out["text_out"].contents.bytes_contents) == [b"great film", "été".encode()]
    assert out["text_out"].parameters["echo"].bool_param is True


def test_raw_inputs_round_trip_as_raw_outputs(dp, stub):
    x = np.array([[1.5, 2.5, -3.5]], np.float32)
    ids = np.array([[5, 6]], np.int64)
    texts = b"\x03\x00\x00\x00abc\x00\x00\x00\x00"  # two BYTES elements: b"abc" and b""
    req = infer_request(
        typed("x", "FP32", [1, 3]),
        typed("ids", "INT64", [1, 2]),
        typed("t", "BYTES", [2]),
        raw=[x.tobytes(), ids.tobytes(), texts],
    )
    resp = stub.ModelInfer(req)

    seen = dp.requests[0][0]
    np.testing.assert_array_equal(seen.inputs[0].data, x)
    np.testing.assert_array_equal(seen.inputs[1].data, ids)
    assert seen.inputs[2].data.tolist() == [b"abc", b""]
    assert all(not o.HasField("contents") for o in resp.outputs)
    assert list(resp.raw_output_contents) == [x.tobytes(), ids.tobytes(), texts]


def test_fp16_travels_raw_even_in_the_answer_to_a_typed_request(dp, stub):
    half = np.array([1.5, -2.0], np.float16)
    resp = stub.ModelInfer(infer_request(typed("h", "FP16", [2]), raw=[half.tobytes()]))
    assert dp.requests[0][0].inputs[0].data.dtype == np.float16
    assert list(resp.raw_output_contents) == [half.tobytes()]
    # the proto has no typed field for FP16, so one FP16 output makes the whole answer raw
    answer = InferResponse(
        "m", "1", "r", [Tensor("p", "FP32", [1], np.ones(1, np.float32)), Tensor("h", "FP16", [2], half)]
    )
    resp = grpc_v2.encode_response(answer, raw=False)
    assert list(resp.raw_output_contents) == [np.ones(1, np.float32).tobytes(), half.tobytes()]
    assert not any(o.HasField("contents") for o in resp.outputs)


def test_narrow_integer_types_and_bool_come_from_their_fields(dp, stub):
    stub.ModelInfer(
        infer_request(
            typed("a", "INT8", [2], int_contents=[-128, 127]),
            typed("b", "UINT16", [2], uint_contents=[0, 65535]),
            typed("c", "BOOL", [3], bool_contents=[True, False, True]),
            typed("d", "FP64", [1], fp64_contents=[0.1]),
            typed("e", "UINT64", [1], uint64_contents=[2**64 - 1]),
        )
    )
    a, b, c, d, e = dp.requests[0][0].inputs
    assert (a.data.dtype, a.data.tolist()) == (np.int8, [-128, 127])
    assert (b.data.dtype, b.data.tolist()) == (np.uint16, [0, 65535])
    assert (c.data.dtype, c.data.tolist()) == (np.bool_, [True, False, True])
    assert (d.data.dtype, d.data.tolist()) == (np.float64, [0.1])
    assert (e.data.dtype, e.data.tolist()) == (np.uint64, [2**64 - 1])


def test_parameters_and_requested_outputs(dp, stub):
    req = infer_request(typed("x", "FP32", [1], fp32_contents=[1.0]), model_version="1")
    req.parameters["top_k"].int64_param = 3
    req.parameters["explain"].bool_param = False
    req.parameters["mode"].string_param = "fast"
    req.inputs[0].parameters["scale"].int64_param = 2
    out = req.outputs.add(name="label")
    out.parameters["binary_data"].bool_param = True
    resp = stub.ModelInfer(req)

    seen, _, version, _ = dp.requests[0]
    assert version == "1"
    assert seen.parameters == {"top_k": 3, "explain": False, "mode": "fast"}
    assert type(seen.parameters["explain"]) is bool and type(seen.parameters["top_k"]) is int
    assert seen.inputs[0].parameters == {"scale": 2}
    assert [(o.name, o.parameters) for o in seen.outputs] == [("label", {"binary_data": True})]
    p = resp.parameters
    assert (p["variant"].string_param, p["rows"].int64_param, p["cached"].WhichOneof("parameter_choice")) == (
        "onnx_fp32",
        2,
        "bool_param",
    )


# ------------------------------------------------------------ malformed requests
MALFORMED = {
    "raw count": (
        infer_request(typed("a", "FP32", [1]), typed("b", "FP32", [1]), raw=[b"\0" * 4]),
        "raw_input_contents: 1 buffers for 2 inputs",
    ),
    "raw size": (
        infer_request(typed("features", "FP32", [1, 2]), raw=[b"\0" * 4]),
        "inputs[0] 'features': 4 bytes of raw data, but shape [1, 2] of FP32 needs 8",
    ),
    "raw and contents": (
        infer_request(typed("features", "FP32", [1], fp32_contents=[1.0]), raw=[b"\0" * 4]),
        "inputs[0] 'features'.contents: must be empty",
    ),
    "wrong field": (
        infer_request(typed("features", "FP32", [2], int64_contents=[1, 2])),
        "inputs[0] 'features'.contents: datatype FP32 takes fp32_contents, got int64_contents",
    ),
    "int8 in int64": (
        infer_request(typed("x", "FP32", [1], fp32_contents=[1]), typed("ids", "INT8", [1], int64_contents=[1])),
        "inputs[1] 'ids'.contents: datatype INT8 takes int_contents, got int64_contents",
    ),
    "too few values": (
        infer_request(typed("features", "FP32", [2, 13], fp32_contents=[1.0] * 13)),
        "inputs[0] 'features': 13 values in contents.fp32_contents do not fill shape [2, 13]",
    ),
    "no values": (
        infer_request(typed("ids", "INT64", [1, 2])),
        "inputs[0] 'ids': 0 values in contents.int64_contents do not fill shape [1, 2]",
    ),
    "out of range": (
        infer_request(typed("ids", "INT8", [2], int_contents=[1, 300])),
        "inputs[0] 'ids'.contents.int_contents: values outside INT8's range [-128, 127]",
    ),
    "negative uint16": (
        infer_request(typed("u", "UINT16", [1], uint_contents=[70000])),
        "inputs[0] 'u'.contents.uint_contents: values outside UINT16's range [0, 65535]",
    ),
    "fp16 typed": (
        infer_request(typed("h", "FP16", [1], fp32_contents=[1.0])),
        "inputs[0] 'h': FP16 has no typed contents field; send it in raw_input_contents",
    ),
    "bytes count": (
        infer_request(typed("text", "BYTES", [2]), raw=[b"\x01\x00\x00\x00a"]),
        "inputs[0] 'text': 1 BYTES elements do not fill shape [2]",
    ),
    "datatype": (
        infer_request(typed("features", "FP8", [1], fp32_contents=[1.0])),
        "inputs[0] 'features'.datatype: unknown datatype 'FP8'",
    ),
    "shape": (
        infer_request(typed("features", "FP32", [-1], fp32_contents=[1.0])),
        "inputs[0] 'features'.shape: must be a list of non-negative integers",
    ),
    "model name": (
        pb.ModelInferRequest(inputs=[typed("x", "FP32", [1], fp32_contents=[1.0])]),
        "model_name: field required",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_request_is_invalid_argument_naming_the_field(dp, stub, case):
    req, message = MALFORMED[case]
    e = rpc_error(stub.ModelInfer, req)
    assert e.code() == Code.INVALID_ARGUMENT
    assert message in e.details()
    assert dp.requests == []  # refused before the data plane, and counted there
    assert dp.refusals == ([] if case == "model name" else [("m", "v2_infer", "grpc", 400)])


def test_parameter_without_a_value_is_named(dp, stub):
    req = infer_request(typed("x", "FP32", [1], fp32_contents=[1.0]))
    req.parameters["priority"].SetInParent()  # what a uint64_param (Triton's proto, not V2's) parses as
    req.inputs[0].parameters["scale"].SetInParent()
    e = rpc_error(stub.ModelInfer, req)
    assert e.code() == Code.INVALID_ARGUMENT and "['scale']: no value" in e.details()


# ------------------------------------------------------------ data plane errors
@pytest.mark.parametrize(
    "error, code",
    [
        (BadRequest("parameters.top_k: must be a positive integer"), Code.INVALID_ARGUMENT),
        (NotFound("no model 'm' version 7"), Code.NOT_FOUND),
        (ServingError("request body is larger than the limit", 413), Code.RESOURCE_EXHAUSTED),
        (QueueFull("model 'm' is at capacity (256 requests queued); retry shortly"), Code.RESOURCE_EXHAUSTED),
        (Unavailable("model 'm' is loading"), Code.UNAVAILABLE),
    ],
)
def test_serving_errors_map_to_grpc_codes_with_their_message(dp, stub, error, code):
    dp.error = error
    e = rpc_error(stub.ModelInfer, infer_request(typed("x", "FP32", [1], fp32_contents=[1.0])))
    assert (e.code(), e.details()) == (code, error.message)


@pytest.mark.parametrize("error", [RuntimeError("secret detail"), ServingError("a 500 ServingError")])
def test_other_errors_are_internal_and_keep_details_out(dp, stub, error, caplog):
    dp.error = error
    e = rpc_error(
        stub.ModelInfer,
        infer_request(typed("x", "FP32", [1], fp32_contents=[1.0])),
        metadata=[("x-request-id", "rid-42")],
    )
    assert e.code() == Code.INTERNAL
    assert e.details() == "internal error; request id rid-42"
    assert any(r.exc_info and r.exc_info[1] is error for r in caplog.records)


def test_unknown_model_is_not_found_on_ready_and_metadata(dp, stub):
    assert rpc_error(stub.ModelReady, pb.ModelReadyRequest(name="nope")).code() == Code.NOT_FOUND
    e = rpc_error(stub.ModelMetadata, pb.ModelMetadataRequest(name="m", version="7"))
    assert (e.code(), e.details()) == (Code.NOT_FOUND, "no model 'm' version 7")


# ------------------------------------------------------------ metadata and readiness
def test_live_ready_and_metadata(dp, stub):
    assert stub.ServerLive(pb.ServerLiveRequest()).live is True
    assert stub.ServerReady(pb.ServerReadyRequest()).ready is False
    dp.is_ready = True
    assert stub.ServerReady(pb.ServerReadyRequest()).ready is True
    assert stub.ModelReady(pb.ModelReadyRequest(name="m", version="1")).ready is True
    s = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert (s.name, s.version, list(s.extensions)) == ("fake", "9.9", ["binary_tensor_data", "statistics"])
    m = stub.ModelMetadata(pb.ModelMetadataRequest(name="m"))
    assert (m.name, list(m.versions), m.platform) == ("m", ["1"], "onnxruntime_onnx")
    assert [(t.name, t.datatype, list(t.shape)) for t in m.inputs] == [("features", "FP32", [-1, 13])]
    assert [(t.name, t.datatype, list(t.shape)) for t in m.outputs] == [("price", "FP32", [-1, 1])]


# ------------------------------------------------------------ API key
@pytest.mark.parametrize("metadata", [[("authorization", "Bearer k")], [("x-api-key", "k")]])
def test_api_key_in_either_metadata_form(dp, stub, metadata):
    dp.api_key = "k"
    stub.ModelInfer(infer_request(typed("x", "FP32", [1], fp32_contents=[1.0])), metadata=metadata)
    assert dict(metadata).items() <= dp.headers[-1].items()


@pytest.mark.parametrize("metadata", [[], [("x-api-key", "wrong")], [("authorization", "Bearer wrong")]])
def test_missing_or_wrong_api_key_is_unauthenticated_except_for_probes(dp, stub, metadata):
    dp.api_key = "k"
    calls = [
        (stub.ModelInfer, infer_request(typed("x", "FP32", [1], fp32_contents=[1.0]))),
        (stub.ModelReady, pb.ModelReadyRequest(name="m")),
        (stub.ServerMetadata, pb.ServerMetadataRequest()),
        (stub.ModelMetadata, pb.ModelMetadataRequest(name="m")),
    ]
    for call, req in calls:
        assert rpc_error(call, req, metadata=metadata).code() == Code.UNAUTHENTICATED
    assert dp.requests == []
    assert dp.scopes == ["protected", "metadata", "metadata", "metadata"]
    dp.is_ready = True  # server liveness and readiness are probes: no key, as /v2/health/* on REST
    assert stub.ServerLive(pb.ServerLiveRequest(), metadata=metadata).live
    assert stub.ServerReady(pb.ServerReadyRequest(), metadata=metadata).ready
    assert dp.scopes[-2:] == ["probe", "probe"]


# ------------------------------------------------------------ health
def health_status(channel, service="") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service)).status


def wait_for(predicate, timeout=2.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_health_follows_readiness_without_an_api_key(dp, running):
    channel = running[2]
    dp.api_key = "k"
    wait_for(lambda: health_status(channel) == NOT_SERVING)
    assert health_status(channel, "inference.GRPCInferenceService") == NOT_SERVING
    dp.is_ready = True
    wait_for(lambda: health_status(channel) == SERVING)
    assert health_status(channel, "inference.GRPCInferenceService") == SERVING
    dp.is_ready = False
    wait_for(lambda: health_status(channel) == NOT_SERVING)


def test_stop_drains_rpcs_in_flight(loop):
    dp = FakeDataPlane()
    dp.delay = 0.3
    port = free_port()
    server = loop.run(grpc_v2.start_grpc_server(dp, settings(port)))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        in_flight = stub.ModelInfer.future(infer_request(typed("x", "FP32", [1], fp32_contents=[4.0])))
        wait_for(lambda: dp.requests)
        stopping = loop.submit(grpc_v2.stop_grpc_server(server, 2))
        assert list(in_flight.result(3).outputs[0].contents.fp32_contents) == [4.0]
        stopping.result(3)
        e = rpc_error(stub.ServerLive, pb.ServerLiveRequest(), timeout=1)
        assert e.code() == Code.UNAVAILABLE


def test_stop_sets_health_not_serving_first(loop):
    dp = FakeDataPlane()
    dp.is_ready = True
    port = free_port()
    server = loop.run(grpc_v2.start_grpc_server(dp, settings(port)))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        wait_for(lambda: health_status(channel) == SERVING)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert next(watch).status == SERVING
        stopping = loop.submit(grpc_v2.stop_grpc_server(server, 0.2))
        assert next(watch).status == NOT_SERVING
        stopping.result(3)


# ------------------------------------------------------------ startup
def test_port_zero_means_no_server(loop):
    assert loop.run(grpc_v2.start_grpc_server(FakeDataPlane(), settings(0))) is None
    loop.run(grpc_v2.stop_grpc_server(None, 1))


def test_busy_port_is_a_startup_error_naming_it(loop, running):
    port = running[1]
    with pytest.raises(grpc_v2.GrpcStartupError, match=f"127.0.0.1:{port}"):
        loop.run(grpc_v2.start_grpc_server(FakeDataPlane(), settings(port)))


def test_messages_over_the_limit_are_refused_both_ways(dp, stub):
    big = infer_request(typed("x", "FP32", [300_000]), raw=[b"\0" * 1_200_000])
    assert rpc_error(stub.ModelInfer, big).code() == Code.RESOURCE_EXHAUSTED
    assert dp.requests == []
    dp.extra_outputs = [Tensor("big", "FP32", [300_000], np.zeros(300_000, np.float32))]
    small = infer_request(typed("x", "FP32", [1]), raw=[b"\0" * 4])
    assert rpc_error(stub.ModelInfer, small).code() == Code.RESOURCE_EXHAUSTED
    assert len(dp.requests) == 1


# ------------------------------------------------------------ a real client
def test_tritonclient_fp32_int64_and_bytes(dp, client):
    dp.is_ready = True
    x = np.array([[0.1, 0.2, 0.3], [1.0, -2.0, 3.5]], np.float32)
    ids = np.array([[1, 14, 22, 0]], np.int64)
    texts = np.array([["A wonderful film", "Dull"], ["été", ""]], dtype=np.object_)
    inputs = [
        triton.InferInput("x", [2, 3], "FP32"),
        triton.InferInput("ids", [1, 4], "INT64"),
        triton.InferInput("text", [2, 2], "BYTES"),
    ]
    for i, v in zip(inputs, (x, ids, texts)):
        i.set_data_from_numpy(v)
    result = client.infer(
        "m",
        inputs,
        model_version="1",
        request_id="abc",
        parameters={"top_k": 2},
        outputs=[triton.InferRequestedOutput(n) for n in ("x_out", "ids_out", "text_out")],
    )

    seen, _, version, _ = dp.requests[0]
    assert (version, seen.id, seen.parameters) == ("1", "abc", {"top_k": 2})
    assert [o.name for o in seen.outputs] == ["x_out", "ids_out", "text_out"]
    np.testing.assert_array_equal(result.as_numpy("x_out"), x)
    np.testing.assert_array_equal(result.as_numpy("ids_out"), ids)
    out = result.as_numpy("text_out")
    assert out.dtype == np.object_ and out.shape == (2, 2)
    assert out.tolist() == [[b"A wonderful film", b"Dull"], ["été".encode(), b""]]
    r = result.get_response()
    assert (r.model_name, r.model_version, r.id) == ("m", "1", "abc")


def test_tritonclient_health_metadata_and_errors(dp, client):
    assert client.is_server_live() and not client.is_server_ready()
    dp.is_ready = True
    assert client.is_server_ready() and client.is_model_ready("m")
    assert client.get_server_metadata().name == "fake"
    assert [i.name for i in client.get_model_metadata("m").inputs] == ["features"]
    x = triton.InferInput("features", [1, 2], "FP32")
    x.set_data_from_numpy(np.zeros((1, 2), np.float32))
    dp.error = BadRequest("inputs[0] 'features': shape [1, 2], the model takes [N, 13]")
    with pytest.raises(InferenceServerException, match=r"INVALID_ARGUMENT.*the model takes \[N, 13\]"):
        client.infer("m", [x])


def test_tritonclient_sends_the_api_key_in_metadata(dp, client):
    dp.api_key = "k"
    x = triton.InferInput("x", [1], "INT64")
    x.set_data_from_numpy(np.array([7], np.int64))
    with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
        client.infer("m", [x])
    # gRPC metadata keys are lower-case: grpc refuses {"Authorization": ...} on the client side
    assert client.infer("m", [x], headers={"authorization": "Bearer k"}).as_numpy("x_out").tolist() == [7]
    assert client.infer("m", [x], headers={"x-api-key": "k"}).as_numpy("x_out").tolist() == [7]


def test_repository_load_and_unload_behind_the_admin_switch(dp, stub):
    for call, request in (
        (stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="m")),
        (stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="m")),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(request)
        assert e.value.code() == Code.NOT_FOUND and "--enable-admin" in e.value.details()
    dp.settings = Settings(enable_admin=True)
    assert stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="m")).isLoaded
    assert stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="m")).isUnloaded
    assert dp.repository_calls == [("load", "m"), ("unload", "m")]
    with pytest.raises(grpc.RpcError) as e:
        stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="nosuch"))
    assert e.value.code() == Code.NOT_FOUND and "nosuch" in e.value.details()
