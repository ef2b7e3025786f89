"""Both protocols for all three models against a real server process; answers equal the Keras
model's own predictions made in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from serving_helpers import reference

FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]
ATOL = 1e-4


@pytest.mark.parametrize("name", ["imdb", "reuters"])
def test_tf_serving_raw_text_matches_keras(server, fixture_root, name):
    ref = reference(fixture_root, name)
    r = server.client.post(f"/v1/models/{name}:predict", json={"instances": ref["texts"].tolist()})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["predictions"]  # exactly TF Serving's answer: the output tensor's rows
    assert (r.headers["x-model-version"], r.headers["x-model-variant"]) == ("1", "onnx_fp32")
    out = np.asarray(r.json()["predictions"], np.float32)
    assert out.shape == ref["y"].shape
    np.testing.assert_allclose(out, ref["y"], atol=ATOL)


@pytest.mark.parametrize("name", ["imdb", "reuters"])
def test_tf_serving_classify_gives_every_label_with_its_score(server, fixture_root, name):
    ref = reference(fixture_root, name)
    r = server.client.post(f"/v1/models/{name}:classify", json={"examples": [{"text": t} for t in ref["texts"]]})
    assert r.status_code == 200, r.text
    labels = json.loads((fixture_root / "repo" / name / "1" / "manifest.json").read_text())["labels"]
    result = r.json()["result"]
    assert len(result) == len(ref["y"])
    for pairs, y in zip(result, ref["y"]):
        assert [p[0] for p in pairs] == labels
        scores = [p[1] for p in pairs]
        np.testing.assert_allclose(scores, [1 - y[0], y[0]] if name == "imdb" else y, atol=ATOL)


@pytest.mark.parametrize("name", ["imdb", "reuters"])
def test_v2_text_bytes_matches_keras(server, fixture_root, name):
    ref = reference(fixture_root, name)
    texts = ref["texts"].tolist()
    r = server.client.post(
        f"/v2/models/{name}/infer",
        json={"id": "req-1", "inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == name and body["model_version"] == "1" and body["id"] == "req-1"
    outs = {o["name"]: o for o in body["outputs"]}
    raw = outs["probability" if name == "imdb" else "probabilities"]
    assert raw["datatype"] == "FP32" and raw["shape"] == list(ref["y"].shape)
    np.testing.assert_allclose(np.array(raw["data"]).reshape(raw["shape"]), ref["y"], atol=ATOL)
    assert outs["label"]["datatype"] == "BYTES" and outs["label"]["shape"] == [len(texts)]
    assert outs["label_probability"]["shape"] == [len(texts)]


def test_text_ids_and_multi_hot_give_the_same_answer(server, fixture_root):
    ref = reference(fixture_root, "imdb")
    text = ref["texts"][0]
    meta = server.client.get("/v1/models/imdb/metadata").json()
    num_words = meta["modelyard"]["num_words"]
    vocab = json.loads((fixture_root / "repo" / "imdb" / "1" / "vocab.json").read_text())
    from modelyard.encoding import TextEncoder

    enc = TextEncoder(vocab, num_words)
    ids = enc.ids(str(text))
    mh = enc.encode([str(text)])[0].tolist()
    answers = []
    for body in (
        {"instances": [str(text)]},
        {"instances": [{"text": str(text)}]},
        {"instances": [{"ids": ids}]},
        {"instances": [mh]},
        {"instances": [{"multi_hot": mh}]},
        {"inputs": {"text": [str(text)]}},
        {"inputs": {"ids": [ids]}},
        {"inputs": {"multi_hot": [mh]}},
    ):
        r = server.client.post("/v1/models/imdb:predict", json=body)
        assert r.status_code == 200, (body, r.text)
        b = r.json()
        answers.append(b["predictions"][0][0] if "predictions" in b else b["outputs"][0][0])
    for body in (
        {"inputs": [{"name": "ids", "shape": [1, len(ids) + 2], "datatype": "INT64", "data": ids + [0, 0]}]},
        {"inputs": [{"name": "multi_hot", "shape": [1, num_words], "datatype": "FP32", "data": [mh]}]},
    ):
        r = server.client.post("/v2/models/imdb/infer", json=body)
        assert r.status_code == 200, (body, r.text)
        answers.append(r.json()["outputs"][0]["data"][0])
    np.testing.assert_allclose(answers, ref["y"][0, 0], atol=ATOL)


def test_boston_named_features_and_lists_both_protocols(server, fixture_root):
    ref = reference(fixture_root, "boston")
    x, y = ref["x"], ref["y"][:, 0]
    named = [dict(zip(FEATURES, row.tolist())) for row in x]
    r = server.client.post("/v1/models/boston:predict", json={"instances": named})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["predictions"], np.float32)[:, 0], y, atol=ATOL)
    r = server.client.post("/v1/models/boston:predict", json={"instances": x.tolist()})
    np.testing.assert_allclose(np.asarray(r.json()["predictions"], np.float32)[:, 0], y, atol=ATOL)
    r = server.client.post(
        "/v1/models/boston:predict", json={"inputs": {f: x[:, i].tolist() for i, f in enumerate(FEATURES)}}
    )
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["outputs"])[:, 0], y, atol=ATOL)
    r = server.client.post("/v1/models/boston:regress", json={"examples": named})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["result"], y, atol=ATOL)
    r = server.client.post(
        "/v2/models/boston/infer",
        json={"inputs": [{"name": "features", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]},
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["name"] == "price" and out["shape"] == [len(x), 1]
    np.testing.assert_allclose(out["data"], y, atol=ATOL)
    r = server.client.post(
        "/v2/models/boston/versions/1/infer",
        json={
            "inputs": [
                {"name": f, "shape": [len(x)], "datatype": "FP32", "data": x[:, i].tolist()}
                for i, f in enumerate(FEATURES)
            ]
        },
    )
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["outputs"][0]["data"], y, atol=ATOL)


def test_status_metadata_and_health(server):
    c = server.client
    assert c.get("/v2/health/live").json() == {"live": True}
    assert c.get("/v2/health/ready").json() == {"ready": True}
    assert c.get("/v2").json()["name"] == "modelyard"
    st = c.get("/v1/models/imdb").json()
    assert st["model_version_status"][0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    assert c.get("/v1/models/imdb/versions/1").status_code == 200
    meta = c.get("/v1/models/reuters/metadata").json()
    assert meta["model_spec"]["version"] == "1"
    assert meta["modelyard"]["device"] == "cpu" and meta["modelyard"]["runtime"] == "onnx"
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert defs["serving_default"]["inputs"]["multi_hot"]["dtype"] == "DT_FLOAT"
    assert defs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert defs["classification"]["method_name"] == "tensorflow/serving/classify"
    v2 = c.get("/v2/models/boston").json()
    assert v2["platform"] == "onnxruntime_onnx" and v2["versions"] == ["1"]
    assert v2["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 13]}]  # the one input to send
    assert {i["name"] for i in v2["parameters"]["alternative_inputs"]} == set(FEATURES)
    imdb = c.get("/v2/models/imdb").json()
    assert imdb["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [i["name"] for i in imdb["parameters"]["alternative_inputs"]] == ["ids", "multi_hot"]
    assert c.get("/v2/models/boston/ready").json() == {"name": "boston", "ready": True}
    assert c.get("/v2/models/boston/versions/1/ready").status_code == 200
    assert c.get("/docs").status_code == 200
    spec = c.get("/openapi.json").json()
    assert "/v1/models/{name}:predict" in spec["paths"] and "/v2/models/{name}/infer" in spec["paths"]


def test_metrics_exported(server):
    server.client.post("/v1/models/imdb:predict", json={"instances": ["a good movie"]})
    server.client.post("/v1/models/boston:predict", json={"instances": [[1.0] * 13]})
    text = server.client.get("/metrics").text
    for name in (
        "modelyard_requests_total{",
        "modelyard_request_duration_seconds_bucket",
        "modelyard_queue_wait_seconds",
        "modelyard_inference_duration_seconds",
        "modelyard_batch_size_rows",
        "modelyard_requests_in_flight",
        "modelyard_model_loaded{",
        "modelyard_predictions_total{",
        "modelyard_predicted_price_thousands",
        "modelyard_feature_drift_zscore{",
        "modelyard_input_text_tokens",
        "modelyard_input_oov_ratio",
        "modelyard_server_ready 1.0",
    ):
        assert name in text, name
    assert 'device="cpu"' in text
    assert (
        'modelyard_requests_total{model="imdb",protocol="rest",route="v1_predict",status="200",'
        'variant="onnx_fp32",version="1"}'
    ) in text


def test_x_request_id_is_echoed(server):
    r = server.client.get("/v2/health/live", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert server.client.get("/v2/health/live").headers["x-request-id"]
