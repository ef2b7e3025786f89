"""KServe V2 over REST as Triton implements it, in process: JSON and binary tensors (Triton's binary tensor data
extension, bytes laid out by hand here, not by a client library), the parser's checks, and the Triton
extensions (configuration, statistics, repository index, load / unload)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from serving_helpers import reference

from serving.errors import BadRequest
from serving.protocols.v2 import parse_infer
from serving.tensors import from_raw, to_raw


def _bytes_tensor(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def _binary_body(header: dict, *blobs: bytes) -> tuple[bytes, dict]:
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }


def _split(r) -> tuple[dict, bytes]:
    n = int(r.headers["inference-header-content-length"])
    return json.loads(r.content[:n]), r.content[n:]


def test_binary_request_and_binary_response(rest_client, fixture_root):
    ref = reference(fixture_root, "imdb")
    texts = [t.encode() for t in ref["texts"].tolist()]
    raw = _bytes_tensor(texts)
    body, headers = _binary_body(
        {
            "inputs": [
                {
                    "name": "text",
                    "shape": [len(texts)],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [
                {"name": "probability", "parameters": {"binary_data": True}},
                {"name": "label", "parameters": {"binary_data": True}},
                {"name": "label_probability"},
            ],
        },
        raw,
    )
    r = rest_client.post("/v2/models/imdb/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    head, blob = _split(r)
    prob, label, label_p = head["outputs"]
    assert prob["parameters"]["binary_data_size"] == 4 * len(texts) and "data" not in prob
    y = np.frombuffer(blob[: 4 * len(texts)], "<f4").reshape(prob["shape"])
    np.testing.assert_allclose(y, ref["y"], atol=1e-4)
    labels = from_raw("label", "BYTES", label["shape"], blob[4 * len(texts) :], "label").data.tolist()
    assert labels == [b"positive" if p >= 0.5 else b"negative" for p in ref["y"][:, 0]]
    assert len(label_p["data"]) == len(texts)  # not asked for binary: JSON


def test_binary_data_output_makes_every_output_binary(rest_client, fixture_root):
    x = reference(fixture_root, "boston")["x"].astype("<f4")
    body, headers = _binary_body(
        {
            "parameters": {"binary_data_output": True},
            "inputs": [
                {
                    "name": "features",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
        },
        x.tobytes(),
    )
    r = rest_client.post("/v2/models/boston/infer", content=body, headers=headers)
    head, blob = _split(r)
    assert [o["parameters"]["binary_data_size"] for o in head["outputs"]] == [len(blob)] == [4 * len(x)]


def test_json_answer_without_binary(rest_client):
    r = rest_client.post(
        "/v2/models/imdb/infer",
        json={"id": "r1", "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a good film"]}]},
    )
    assert r.status_code == 200 and "inference-header-content-length" not in r.headers
    body = r.json()
    assert body["id"] == "r1" and [o["name"] for o in body["outputs"]] == ["probability", "label", "label_probability"]


@pytest.mark.parametrize(
    "header,body,words",
    [
        (
            {"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 9}},
            _bytes_tensor([b"abcde"]),
            "1 BYTES elements do not fill shape [2]",
        ),
        (
            {"name": "text", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 7}},
            struct.pack("<I", 10) + b"abc",
            "claims 10 bytes",
        ),
        (
            {"name": "features", "shape": [1, 13], "datatype": "FP32", "parameters": {"binary_data_size": 48}},
            b"\0" * 48,
            "48 bytes of raw data, but shape [1, 13] of FP32 needs 52",
        ),
        (
            {"name": "features", "shape": [1, 13], "datatype": "FP32", "parameters": {"binary_data_size": 99}},
            b"\0" * 52,
            "binary_data_size: 99, but 52 bytes",
        ),
        (
            {"name": "features", "shape": [1, 13], "datatype": "FP32", "parameters": {"binary_data_size": 52}},
            b"\0" * 60,
            "8 bytes of binary data follow the last binary tensor",
        ),
    ],
)
def test_binary_sizes_are_checked(header, body, words):
    data, headers = _binary_body({"inputs": [header]}, body)
    with pytest.raises(BadRequest) as e:
        parse_infer(data, headers["Inference-Header-Content-Length"])
    assert words in e.value.message


def test_header_length_outside_the_body_is_refused():
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length"):
        parse_infer(b"{}", "99")
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length"):
        parse_infer(b"{}", "-1")


def test_raw_round_trip():
    for datatype, arr in (
        ("FP32", np.arange(6, dtype="<f4").reshape(2, 3)),
        ("INT64", np.array([[1, -2]], "<i8")),
        ("BOOL", np.array([True, False])),
        ("FP16", np.array([0.5, 2.0], "<f2")),
    ):
        from serving.tensors import Tensor

        t = Tensor("x", datatype, list(arr.shape), arr)
        np.testing.assert_array_equal(from_raw("x", datatype, list(arr.shape), to_raw(t), "x").data, arr)


def test_model_config_statistics_and_index(rest_client):
    cfg = rest_client.get("/v2/models/boston/config").json()
    assert cfg["input"] == [{"name": "features", "data_type": "TYPE_FP32", "dims": [13]}]
    assert cfg["output"] == [{"name": "price", "data_type": "TYPE_FP32", "dims": [1]}]
    assert cfg["platform"] == "onnxruntime_onnx" and cfg["max_batch_size"] == 64
    before = rest_client.get("/v2/models/boston/versions/1/stats").json()["model_stats"][0]
    rest_client.post(
        "/v2/models/boston/infer",
        json={"inputs": [{"name": "features", "shape": [2, 13], "datatype": "FP32", "data": [1.0] * 26}]},
    )
    rest_client.post("/v2/models/boston/infer", json={"inputs": [{"name": "features"}]})
    after = rest_client.get("/v2/models/boston/stats").json()["model_stats"][0]
    s0, s1 = before["inference_stats"], after["inference_stats"]
    assert s1["success"]["count"] == s0["success"]["count"] + 1
    assert after["inference_count"] == before["inference_count"] + 2
    for stage in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert s1[stage]["count"] == s0[stage]["count"] + 1 and s1[stage]["ns"] > s0[stage]["ns"], stage
    every = rest_client.get("/v2/models/stats").json()["model_stats"]
    assert {m["name"] for m in every} == {"imdb", "reuters", "boston"}
    index = rest_client.post("/v2/repository/index", json={"ready": True}).json()
    assert {(m["name"], m["version"], m["state"]) for m in index} == {
        ("imdb", "1", "READY"),
        ("reuters", "1", "READY"),
        ("boston", "1", "READY"),
    }


def test_repository_unload_then_load(rest_client):
    assert rest_client.post("/v2/repository/models/reuters/unload").status_code == 200
    r = rest_client.post(
        "/v2/models/reuters/infer",
        json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["wheat"]}]},
    )
    assert r.status_code == 404 and "unloaded" in r.json()["error"]
    index = {m["name"]: m for m in rest_client.post("/v2/repository/index").json()}
    assert index["reuters"]["state"] == "UNAVAILABLE"
    assert rest_client.get("/v2/health/ready").status_code == 200  # an unloaded model is not awaited
    assert rest_client.post("/v2/repository/models/reuters/load").status_code == 200
    r = rest_client.post(
        "/v2/models/reuters/infer",
        json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["wheat"]}]},
    )
    assert r.status_code == 200
    assert rest_client.post("/v2/repository/models/nosuch/load").status_code == 404
