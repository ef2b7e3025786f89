"""Bad input of every kind is answered 4xx with a message that names the field, never 5xx."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib

import pytest

from loadtests.process import free_port

ROW = [1.0] * 13
CASES = [
    # (path, body (bytes or json), status, words expected in the message)
    ("/v1/models/imdb:predict", b"{not json", 400, "malformed JSON"),
    ("/v1/models/imdb:predict", b"", 400, "empty"),
    ("/v1/models/imdb:predict", b"[1, 2]", 400, "JSON object"),
    ("/v1/models/imdb:predict", {}, 400, "exactly one of 'instances'"),
    ("/v1/models/imdb:predict", {"instances": []}, 400, "instances: empty"),
    ("/v1/models/imdb:predict", {"instances": "text"}, 400, "instances: must be a list"),
    ("/v1/models/imdb:predict", {"instances": [[1.0, 0.0]]}, 400, "expected shape [N, 50]"),
    ("/v1/models/imdb:predict", {"instances": [42]}, 400, "instances[0]"),
    ("/v1/models/imdb:predict", {"instances": ["ok", {"ids": ["a"]}]}, 400, "instances[1].ids"),
    ("/v1/models/imdb:predict", {"instances": [{"ids": [-3]}]}, 400, "non-negative"),
    ("/v1/models/imdb:predict", {"instances": [{"words": "x"}]}, 400, "expected one key"),
    ("/v1/models/imdb:predict", {"instances": [["a"] * 50]}, 400, "must be numbers"),
    ("/v1/models/imdb:predict", {"instances": ["x"] * 300}, 400, "at most 256"),
    (
        "/v1/models/imdb:predict",
        {"instances": ["x"], "signature_name": "predict_v2"},
        400,
        "signature_name: 'predict_v2' is not a signature",
    ),
    ("/v1/models/imdb:predict", {"instances": [{"b64": "not base64!"}]}, 400, "b64: not valid base64"),
    ("/v1/models/imdb:regress", {"examples": [{"text": "x"}]}, 400, "is a classifier: use :classify"),
    ("/v1/models/boston:classify", {"examples": [{"CRIM": 1}]}, 400, "is a regression model: use :regress"),
    ("/v1/models/boston:regress", {"examples": [{"CRIM": 1}]}, 400, "examples[0]: missing ZN"),
    ("/v1/models/imdb:classify", {"instances": ["x"]}, 400, "examples: field required"),
    ("/v1/models/boston:predict", {"instances": [ROW[:12]]}, 400, "expected 13 features, got 12"),
    ("/v1/models/boston:predict", {"instances": [{"CRIM": 1}]}, 400, "missing ZN"),
    ("/v1/models/boston:predict", {"instances": [ROW[:12] + ["x"]]}, 400, "must be numbers"),
    ("/v1/models/boston:predict", {"inputs": {"features": [[1.0] * 14]}}, 400, "inputs.features"),
    ("/v2/models/boston/infer", {"inputs": []}, 400, "inputs: empty"),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32"}]},
        400,
        "inputs[0] 'features'.data: field required",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": [1.0] * 12}]},
        400,
        "12 values do not fill shape [1, 13]",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32", "data": [1.0] * 12}]},
        400,
        "inputs[0] 'features': shape [1, 12] does not match the declared shape [-1, 13]",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP99", "data": [1.0] * 13}]},
        400,
        "inputs[0] 'features'.datatype",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": ["a"] * 13}]},
        400,
        "'features'.data: datatype FP32, got strings",
    ),
    # the malformed tensors Triton refuses: each a 400 that names the tensor
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "INT64", "data": [8] * 13}]},
        400,
        "inputs[0] 'features': datatype INT64, but the input is declared FP32",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "BOOL", "data": [True] * 13}]},
        400,
        "'features': datatype BOOL, but",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "UINT8", "data": [1] * 13}]},
        400,
        "'features': datatype UINT8, but",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "nosuch", "shape": [1, 13], "datatype": "FP32", "data": ROW}]},
        400,
        "inputs[0] 'nosuch': unknown input",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "features", "shape": [13], "datatype": "FP32", "data": ROW}]},
        400,
        "'features': shape [13] does not match the declared shape [-1, 13]",
    ),
    (
        "/v2/models/boston/infer",
        {"inputs": [{"name": "CRIM", "shape": [1], "datatype": "FP32", "data": [1.0]}]},
        400,
        "missing ZN",
    ),
    (
        "/v2/models/boston/infer",
        {
            "inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": ROW}],
            "outputs": [{"name": "label"}],
        },
        400,
        "outputs[0] 'label': unknown output",
    ),
    (
        "/v2/models/imdb/infer",
        {"inputs": [{"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 2**63]}]},
        400,
        "'ids'.data: INT64 holds integers",
    ),
    (
        "/v2/models/imdb/infer",
        {"inputs": [{"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 2.5]}]},
        400,
        "'ids'.data: INT64 holds integers",
    ),
    (
        "/v2/models/imdb/infer",
        {"inputs": [{"name": "ids", "shape": [1, 2], "datatype": "INT32", "data": [1, 5]}]},
        400,
        "'ids': datatype INT32, but the input is declared INT64",
    ),
    (
        "/v2/models/imdb/infer",
        {
            "inputs": [
                {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]},
                {"name": "ids", "shape": [1, 1], "datatype": "INT64", "data": [1]},
            ]
        },
        400,
        "inputs: 2 tensors ('text', 'ids')",
    ),
    (
        "/v2/models/reuters/infer",
        {"parameters": {"top_k": "3"}, "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}]},
        400,
        "parameters.top_k",
    ),
    (
        "/v2/models/imdb/infer",
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [3]}]},
        400,
        "'text'.data: BYTES elements must be strings",
    ),
    (
        "/v2/models/imdb/infer",
        {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]}]},
        400,
        "do not fill shape",
    ),
    (
        "/v2/models/imdb/infer",
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}], "outputs": [{"name": "nope"}]},
        400,
        "outputs[0] 'nope': unknown output",
    ),
    ("/v1/models/nosuch:predict", {"instances": ["x"]}, 404, "unknown model 'nosuch'"),
    ("/v2/models/nosuch/infer", {"inputs": []}, 404, "unknown model 'nosuch'"),
    ("/v1/models/imdb/versions/7:predict", {"instances": ["x"]}, 404, "no version 7 loaded"),
    ("/v1/models/imdb/versions/abc:predict", {"instances": ["x"]}, 400, "not a version number"),
    ("/v2/models/imdb/versions/9/infer", {"inputs": []}, 404, "no version 9"),
    ("/v1/models/imdb/labels/canary:predict", {"instances": ["x"]}, 404, "no label 'canary'"),
    ("/admin/reload", {}, 404, "admin routes are disabled"),
]


@pytest.mark.parametrize("path,body,status,words", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_requests_get_clear_4xx(server, path, body, status, words):
    if isinstance(body, bytes):
        r = server.client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = server.client.post(path, json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()


def test_huge_body_is_413(server):
    big = b'{"instances": ["' + b"word " * (2 * 1024 * 1024) + b'"]}'
    r = server.client.post("/v1/models/imdb:predict", content=big)
    assert r.status_code == 413 and "larger than the limit" in r.json()["error"]


def test_huge_chunked_body_is_413(server):
    def chunks():
        yield b'{"instances": ["'
        for _ in range(100):
            yield b"word " * 20000
        yield b'"]}'

    r = server.client.post("/v1/models/imdb:predict", content=chunks())
    assert r.status_code == 413


def test_unknown_routes_and_methods(server):
    r = server.client.get("/v3/whatever")
    assert r.status_code == 404 and "error" in r.json()
    assert server.client.get("/v1/models/nosuch").status_code == 404
    assert server.client.get("/v2/models/nosuch/ready").status_code == 404
    assert server.client.get("/v1/models/imdb/versions/3/metadata").status_code == 404
    assert server.client.get("/v1/models/imdb:predict").status_code in (404, 405)


def test_no_5xx_in_metrics_after_bad_input(server):
    text = server.client.get("/metrics").text
    assert 'status="5' not in text


def test_compressed_bodies_are_read_within_the_limit(server):
    body = json.dumps({"instances": ["a good movie"]}).encode()
    for encoding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        r = server.client.post("/v1/models/imdb:predict", content=data, headers={"content-encoding": encoding})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1, r.text
    bomb = gzip.compress(b'{"instances": ["' + b"a" * (9 * 1024 * 1024) + b'"]}')
    assert len(bomb) < 100_000
    r = server.client.post("/v1/models/imdb:predict", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413 and "after decompression" in r.json()["error"]
    r = server.client.post("/v2/models/imdb/infer", content=b"\x1f\x8bnot gzip", headers={"content-encoding": "gzip"})
    assert r.status_code == 400 and "not valid gzip" in r.json()["error"]
    r = server.client.post("/v1/models/imdb:predict", content=body, headers={"content-encoding": "br"})
    assert r.status_code == 415 and "use gzip, deflate or identity" in r.json()["error"]


def test_large_answers_are_compressed_when_the_client_accepts_it(server):
    body = {"instances": ["a good movie"] * 200}
    r = server.client.post("/v1/models/imdb:predict", json=body, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert len(r.json()["predictions"]) == 200  # httpx decompressed it
    r = server.client.post("/v1/models/imdb:predict", json=body, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in r.headers


def test_a_busy_grpc_port_is_a_one_line_startup_error(server, fixture_root):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard",
            "serve",
            "--repo",
            str(fixture_root / "repo"),
            "--port",
            str(free_port()),
            "--grpc-port",
            str(server.grpc_port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert f"gRPC cannot listen on 127.0.0.1:{server.grpc_port}" in r.stderr and "Traceback" not in r.stderr
