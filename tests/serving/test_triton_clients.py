"""KServe V2 as its users' own clients speak it: tritonclient's HTTP and gRPC clients with their default settings
(binary tensors both ways over HTTP, raw contents over gRPC) against a real server process, answers equal to the
Keras model's own predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from serving_helpers import reference
from modelyard.encoding import TextEncoder
from tritonclient.utils import InferenceServerException

ATOL = 1e-4


@pytest.fixture(scope="module", params=["http", "grpc"])
def client(request, server):
    if request.param == "http":
        c = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    else:
        c = grpcclient.InferenceServerClient(server.grpc_url)
    c.module = httpclient if request.param == "http" else grpcclient
    yield c
    c.close()


def _infer(client, name: str, inputs: list, outputs=None, **kw):
    tensors = []
    for tname, arr, dt in inputs:
        t = client.module.InferInput(tname, list(arr.shape), dt)
        t.set_data_from_numpy(arr)
        tensors.append(t)
    outs = [client.module.InferRequestedOutput(o) for o in outputs] if outputs else None
    return client.infer(name, tensors, outputs=outs, **kw)


@pytest.mark.parametrize("name", ["imdb", "reuters"])
def test_text_as_a_bytes_tensor(client, fixture_root, name):
    ref = reference(fixture_root, name)
    texts = np.array([t.encode() for t in ref["texts"].tolist()], dtype=np.object_)
    result = _infer(client, name, [("text", texts, "BYTES")])
    raw = "probability" if name == "imdb" else "probabilities"
    np.testing.assert_allclose(result.as_numpy(raw), ref["y"], atol=ATOL)
    labels = result.as_numpy("label")
    assert labels.shape == (len(texts),) and isinstance(labels[0], bytes)
    resp = result.get_response(as_json=True) if client.module is grpcclient else result.get_response()
    assert resp["model_version"] == "1" and resp["model_name"] == name


def test_boston_features_and_requested_outputs(client, fixture_root):
    ref = reference(fixture_root, "boston")
    x = ref["x"].astype(np.float32)
    result = _infer(client, "boston", [("features", x, "FP32")], outputs=["price"])
    np.testing.assert_allclose(result.as_numpy("price"), ref["y"], atol=ATOL)


def test_token_ids_as_int64(client, fixture_root):
    ref = reference(fixture_root, "imdb")
    vocab = json.loads((fixture_root / "repo" / "imdb" / "1" / "vocab.json").read_text())
    enc = TextEncoder(vocab, 50)
    rows = [enc.ids(t) for t in ref["texts"].tolist()]
    ids = np.zeros((len(rows), max(map(len, rows))), np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    result = _infer(client, "imdb", [("ids", ids, "INT64")])
    np.testing.assert_allclose(result.as_numpy("probability"), ref["y"], atol=ATOL)


def test_malformed_tensor_is_refused_naming_it(client):
    with pytest.raises(InferenceServerException) as e:
        _infer(client, "boston", [("features", np.full((1, 13), 8, np.int64), "INT64")])
    assert "'features': datatype INT64, but the input is declared FP32" in e.value.message()
    assert e.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")
    with pytest.raises(InferenceServerException) as e:
        _infer(client, "boston", [("nosuch", np.ones((1, 13), np.float32), "FP32")])
    assert "'nosuch': unknown input" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client.infer("nosuch", [])
    assert "unknown model 'nosuch'" in e.value.message()


def test_health_metadata_and_following_it_works(client, fixture_root):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("imdb") and client.is_model_ready("boston", "1")
    meta = client.get_model_metadata("boston")
    inputs = (
        meta["inputs"]
        if isinstance(meta, dict)
        else [{"name": i.name, "datatype": i.datatype, "shape": list(i.shape)} for i in meta.inputs]
    )
    # a client that sends one tensor per declared input, as declared, succeeds
    assert inputs == [{"name": "features", "datatype": "FP32", "shape": [-1, 13]}]
    x = reference(fixture_root, "boston")["x"][:2].astype(np.float32)
    assert _infer(client, "boston", [(inputs[0]["name"], x, inputs[0]["datatype"])]).as_numpy("price").shape == (2, 1)


def test_http_extensions_and_compression(server, fixture_root):
    c = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    c.module = httpclient
    ref = reference(fixture_root, "imdb")
    texts = np.array(ref["texts"].tolist(), dtype=np.object_)
    for algorithm in ("gzip", "deflate"):
        result = _infer(
            c,
            "imdb",
            [("text", texts, "BYTES")],
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
        np.testing.assert_allclose(result.as_numpy("probability"), ref["y"], atol=ATOL)
    assert "binary_tensor_data" in c.get_server_metadata()["extensions"]
    cfg = c.get_model_config("imdb")
    assert cfg["max_batch_size"] >= 1 and cfg["input"] == [{"name": "text", "data_type": "TYPE_STRING", "dims": []}]
    stats = c.get_inference_statistics("imdb")["model_stats"][0]
    assert stats["inference_stats"]["success"]["count"] >= 2 and stats["inference_stats"]["queue"]["ns"] > 0
    index = c.get_model_repository_index()
    assert {(m["name"], m["state"]) for m in index} >= {("imdb", "READY"), ("boston", "READY")}
    with pytest.raises(InferenceServerException) as e:  # repository control is an admin route
        c.unload_model("imdb")
    assert "admin routes are disabled" in e.value.message()
    c.close()
