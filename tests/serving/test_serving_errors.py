"""Bad input of every kind is answered 4xx with a message that names the field, never 5xx."""

from __future__ import annotations

import pytest

ROW = [1.0] * 13
CASES = [
    # (path, body (bytes or json), status, words expected in the message)
    ("/v1/models/imdb:predict", b"{not json", 400, "malformed JSON"),
    ("/v1/models/imdb:predict", b"", 400, "empty"),
    ("/v1/models/imdb:predict", b"[1, 2]", 400, "JSON object"),
    ("/v1/models/imdb:predict", {}, 400, "exactly one of 'instances'"),
    ("/v1/models/imdb:predict", {"instances": []}, 400, "instances: empty list"),
    ("/v1/models/imdb:predict", {"instances": "text"}, 400, "instances: must be a list"),
    ("/v1/models/imdb:predict", {"instances": [[1.0, 0.0]]}, 400, "expected shape [N, 50]"),
    ("/v1/models/imdb:predict", {"instances": [42]}, 400, "instances[0]"),
    ("/v1/models/imdb:predict", {"instances": ["ok", {"ids": ["a"]}]}, 400, "instances[1].ids"),
    ("/v1/models/imdb:predict", {"instances": [{"ids": [-3]}]}, 400, "non-negative"),
    ("/v1/models/imdb:predict", {"instances": [{"words": "x"}]}, 400, "expected one key"),
    ("/v1/models/imdb:predict", {"instances": [["a"] * 50]}, 400, "must be numbers"),
    ("/v1/models/imdb:predict", {"instances": ["x"] * 300}, 400, "at most 256"),
    ("/v1/models/reuters:predict", {"instances": ["x"], "top_k": "3"}, 400, "top_k"),
    ("/v1/models/boston:predict", {"instances": [ROW[:12]]}, 400, "expected 13 features, got 12"),
    ("/v1/models/boston:predict", {"instances": [{"CRIM": 1}]}, 400, "missing ZN"),
    ("/v1/models/boston:predict", {"instances": [ROW[:12] + ["x"]]}, 400, "must be numbers"),
    ("/v1/models/boston:predict", {"inputs": {"features": [[1.0] * 14]}}, 400, "inputs.features"),
    ("/v2/models/boston/infer", {"inputs": []}, 400, "inputs: empty list"),
    ("/v2/models/boston/infer", {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32"}]}, 400,
     "inputs[0].data: field required"),
    ("/v2/models/boston/infer", {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32",
                                             "data": [1.0] * 12}]}, 400, "12 values do not fill shape [1, 13]"),
    ("/v2/models/boston/infer", {"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32",
                                             "data": [1.0] * 12}]}, 400, "expected shape [N, 13]"),
    ("/v2/models/boston/infer", {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP99",
                                             "data": [1.0] * 13}]}, 400, "inputs[0].datatype"),
    ("/v2/models/boston/infer", {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32",
                                             "data": ["a"] * 13}]}, 400, "must be numbers"),
    ("/v2/models/imdb/infer", {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [3]}]}, 400,
     "must be a string"),
    ("/v2/models/imdb/infer", {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]}]}, 400,
     "do not fill shape"),
    ("/v2/models/imdb/infer", {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
                               "outputs": [{"name": "nope"}]}, 400, "unknown output nope"),
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
