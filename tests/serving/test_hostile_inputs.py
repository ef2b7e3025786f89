"""A hostile-input corpus across both protocols and gRPC, against one real server process: every request gets an
answer below 500 (gRPC: a status other than INTERNAL / UNKNOWN), and the server is healthy afterwards."""

from __future__ import annotations

import json

import grpc
import pytest

from serving.protocols.proto import grpc_predict_v2_pb2 as pb
from serving.protocols.proto import grpc_predict_v2_pb2_grpc as pb_grpc

BIG = 2**63
ROW = [1.0] * 13
VERSIONS = ["²", "١", "9" * 4301, "0", "-1", "1.0", "%00", "1 ", "+1", "0x1", "99999999999999999999"]
NAMES = ["nosuch", "x" * 5000, "imdb%2F..%2F..", "ímdb", "..", "imdb:predict"]


def _v2(name, shape, datatype, data, **extra):
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}], **extra}


def _corpus() -> list[tuple[str, str, object]]:
    """(method, path, body) triples: a body is bytes, a JSON-able object, or None."""
    c = []
    for v in VERSIONS:
        c += [
            ("POST", f"/v1/models/imdb/versions/{v}:predict", {"instances": ["x"]}),
            ("POST", f"/v2/models/imdb/versions/{v}/infer", _v2("text", [1], "BYTES", ["x"])),
            ("GET", f"/v1/models/imdb/versions/{v}", None),
            ("GET", f"/v1/models/imdb/versions/{v}/metadata", None),
            ("GET", f"/v2/models/imdb/versions/{v}", None),
            ("GET", f"/v2/models/imdb/versions/{v}/ready", None),
            ("GET", f"/v2/models/imdb/versions/{v}/config", None),
            ("GET", f"/v2/models/imdb/versions/{v}/stats", None),
        ]
    for n in NAMES:
        c += [
            ("POST", f"/v1/models/{n}:predict", {"instances": ["x"]}),
            ("GET", f"/v2/models/{n}", None),
            ("POST", f"/v2/models/{n}/infer", _v2("text", [1], "BYTES", ["x"])),
        ]
    for method in ("GET", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"):
        c += [
            (method, "/v1/models/imdb:predict", None),
            (method, "/v2/models/imdb/infer", None),
            (method, "/v2/repository/index", None),
        ]
    tfs = "/v1/models/imdb:predict"
    boston = "/v1/models/boston:predict"
    c += [
        (("POST", tfs, body))
        for body in (
            {"instances": [{"ids": [1, BIG]}]},
            {"instances": [{"ids": [1, 2**64 + 5]}]},
            {"instances": [{"ids": [-BIG - 1]}]},
            {"instances": [{"ids": [1.5]}]},
            {"instances": [{"ids": "123"}]},
            {"instances": [{"ids": [[1]]}]},
            {"instances": [[1e39] * 50]},
            {"instances": [[None] * 50]},
            {"instances": [[True] * 50]},
            {"instances": [{"b64": 5}]},
            {"instances": [{"b64": "%%%"}]},
            {"instances": [{"text": ["nested"]}]},
            {"instances": [{}]},
            {"instances": [[]]},
            {"instances": None},
            {"inputs": {"ids": [[BIG]]}},
            {"inputs": {"text": 5}},
            {"inputs": 5},
            {"inputs": []},
            {"instances": ["x"], "signature_name": 5},
            b"\xff\xfe\x00",
            b"[" * 10000 + b"]" * 10000,
            b'{"instances": [1e400]}',
            b'{"instances": [NaN]}',
            b"null",
            b"123",
            b'"string"',
            b'{"instances": ["a"], "instances": 5}',
        )
    ]
    c += [
        (("POST", boston, body))
        for body in (
            {"instances": ["1234567890123"]},
            {"instances": [ROW[:12] + [BIG]]},
            {"instances": [ROW[:12] + [10**400]]},
            {"instances": [ROW[:12] + [1e39]]},
            {"instances": [ROW[:12] + ["1"]]},
            {"instances": [ROW[:12] + [[1]]]},
            {"instances": [{"features": "x"}]},
            {"instances": [5]},
            {"inputs": {"features": [[BIG] * 13]}},
            {"inputs": {"CRIM": [1]}},
            {"instances": [dict.fromkeys(["CRIM", "ZN"], 1)]},
        )
    ]
    for path in ("/v1/models/boston:regress", "/v1/models/imdb:classify", "/v1/models/boston:classify"):
        c += [
            ("POST", path, body)
            for body in (
                {"examples": 5},
                {"examples": [5]},
                {"examples": [{"CRIM": [BIG]}]},
                {"context": 5, "examples": [{}]},
                {"examples": [{"text": {"b64": "!!"}}]},
            )
        ]
    infer = "/v2/models/imdb/infer"
    c += [
        ("POST", infer, body)
        for body in (
            _v2("ids", [1, 2], "INT64", [1, BIG]),
            _v2("ids", [1, 2], "UINT64", [1, BIG]),
            _v2("ids", [1, 1], "INT64", [2**70]),
            _v2("ids", [1, 1], "INT64", [-1]),
            _v2("ids", [1, 1], "INT64", [1.5]),
            _v2("ids", [-1, 1], "INT64", [1]),
            _v2("ids", [2**62, 2**62], "INT64", [1]),
            _v2("ids", "x", "INT64", [1]),
            _v2("ids", [1, 1], 5, [1]),
            _v2("text", [1], "BYTES", [[["deep"]]]),
            _v2("text", [1], "BYTES", [None]),
            _v2("text", [1], "BYTES", "scalar"),
            _v2("multi_hot", [1, 50], "FP32", [1e39] * 50),
            _v2("multi_hot", [1, 50], "FP32", [[1] * 50, [1]]),
            {"inputs": [5]},
            {"inputs": {}},
            {"inputs": [{}]},
            {"inputs": [{"name": 5}]},
            {"id": 5, **_v2("text", [1], "BYTES", ["x"])},
            {"parameters": 5, **_v2("text", [1], "BYTES", ["x"])},
            {"outputs": 5, **_v2("text", [1], "BYTES", ["x"])},
            {"outputs": [{"name": "label", "parameters": 5}], **_v2("text", [1], "BYTES", ["x"])},
        )
    ]
    c += [
        ("POST", "/v2/models/boston/infer", body)
        for body in (
            _v2("features", [1, 13], "FP32", [BIG] * 13),
            _v2("features", [1, 13], "FP16", [1e6] * 13),
            _v2("features", [1, 13], "FP32", [[1] * 13]),
            _v2("features", [0, 13], "FP32", []),
        )
    ]
    return c


BINARY = [  # (header length, body) for the binary tensor extension
    ("abc", b"{}"),
    ("99999", b"{}"),
    ("-5", b"{}"),
    ("", b"{}"),
    ("٣", b"{}x"),
    (
        str(len(b'{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":-1}}]}')),
        b'{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":-1}}]}',
    ),
    (
        str(len(b'{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":8}}]}')),
        b'{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":8}}]}'
        b"\xff\xff\xff\xff\x00\x00\x00\x00",
    ),
]


def test_hostile_rest_corpus_gets_no_5xx_and_the_server_stays_healthy(server):
    corpus = _corpus()
    assert len(corpus) >= 100
    failures = []
    for method, path, body in corpus:
        kw = {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
        r = server.client.request(method, path, **kw)
        if r.status_code >= 500:
            failures.append((method, path[:80], str(body)[:80], r.status_code, r.text[:200]))
        elif r.status_code >= 400 and method not in ("HEAD",):
            assert "error" in r.json(), (method, path, r.text)
    for length, body in BINARY:
        r = server.client.post(
            "/v2/models/imdb/infer", content=body, headers={"inference-header-content-length": length.encode()}
        )
        if r.status_code >= 500:
            failures.append(("binary", length, body[:80], r.status_code, r.text[:200]))
    assert not failures, failures
    assert server.client.get("/v2/health/ready").status_code == 200
    assert server.client.post("/v1/models/imdb:predict", json={"instances": ["fine"]}).status_code == 200
    assert 'status="5' not in server.client.get("/metrics").text


def _grpc_corpus():
    def req(*inputs, raw=(), **kw):
        return pb.ModelInferRequest(
            model_name=kw.pop("model", "imdb"), inputs=list(inputs), raw_input_contents=list(raw), **kw
        )

    def t(name, datatype, shape, **contents):
        return pb.ModelInferRequest.InferInputTensor(
            name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
        )

    return [
        req(t("ids", "INT64", [1, 1], int64_contents=[-5])),
        req(t("ids", "UINT64", [1, 1], uint64_contents=[2**64 - 1])),
        req(t("ids", "INT64", [1, 2], int64_contents=[1])),
        req(t("ids", "INT64", [1, 1]), raw=[b"\x01"]),
        req(t("text", "BYTES", [1]), raw=[b"\xff\xff\xff\xff"]),
        req(t("text", "BYTES", [1], bytes_contents=[b"\xff\xfe"])),
        req(t("text", "BYTES", [2**62, 2**62], bytes_contents=[b"x"])),
        req(t("text", "STRING", [1], bytes_contents=[b"x"])),
        req(t("text", "BYTES", [1], bytes_contents=[b"x"]), model="nosuch"),
        req(t("text", "BYTES", [1], bytes_contents=[b"x"]), model_version="²"),
        req(t("text", "BYTES", [1], bytes_contents=[b"x"]), model_version="9" * 5000),
        req(t("features", "FP32", [1, 13], fp32_contents=[float("nan")] * 13), model="boston"),
        req(t("features", "FP32", [1, 13], fp32_contents=[float("inf")] * 13), model="boston"),
        req(t("features", "FP16", [1, 13]), raw=[b"\x00\x7c" * 13], model="boston"),
        req(),
    ]


def test_hostile_grpc_corpus_gets_client_errors(server):
    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        bad = []
        for request in _grpc_corpus():
            try:
                stub.ModelInfer(request, timeout=10)
            except grpc.RpcError as e:
                if e.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    bad.append((str(request)[:120], e.code(), e.details()))
            else:
                bad.append((str(request)[:120], "accepted"))
        garbage = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as e:
            garbage(b"\xff\xff\xff\xff\xff", timeout=10)
        assert not bad, bad
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid" in e.value.details()
        ok = stub.ModelInfer(
            pb.ModelInferRequest(
                model_name="imdb",
                inputs=[
                    pb.ModelInferRequest.InferInputTensor(
                        name="text",
                        datatype="BYTES",
                        shape=[1],
                        contents=pb.InferTensorContents(bytes_contents=[b"good"]),
                    )
                ],
            )
        )
        assert json.loads(json.dumps(list(ok.outputs[0].shape))) == [1, 1]
