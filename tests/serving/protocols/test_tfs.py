"""TF Serving REST as a drop-in, in process: the request and response shapes of TF Serving's REST API page
(row and columnar ``:predict``, ``:classify``, ``:regress``, ``{"b64": ...}``, ``signature_name``, metadata)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from serving_helpers import reference

BOSTON = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]


def test_predict_row_format_is_the_output_tensors_rows(rest_client, fixture_root):
    for name in ("imdb", "boston"):
        ref = reference(fixture_root, name)
        body = {"instances": ref["texts"].tolist() if name == "imdb" else ref["x"].tolist()}
        r = rest_client.post(f"/v1/models/{name}:predict", json=body)
        assert r.status_code == 200 and r.json().keys() == {"predictions"}
        # TF Serving's documented client code
        y = np.asarray(r.json()["predictions"], np.float32)
        assert y.shape == (len(ref["y"]), 1)
        np.testing.assert_allclose(y, ref["y"], atol=1e-4)


def test_predict_columnar_format_answers_outputs(rest_client, fixture_root):
    ref = reference(fixture_root, "boston")
    r = rest_client.post("/v1/models/boston:predict", json={"inputs": {"features": ref["x"].tolist()}})
    assert r.json().keys() == {"outputs"}
    np.testing.assert_allclose(r.json()["outputs"], ref["y"], atol=1e-4)
    r = rest_client.post("/v1/models/imdb:predict", json={"inputs": "a good movie"})
    assert np.asarray(r.json()["outputs"]).shape == (1, 1)


def test_b64_is_accepted_wherever_a_string_is(rest_client, fixture_root):
    text = reference(fixture_root, "imdb")["texts"][0]
    b64 = {"b64": base64.b64encode(text.encode()).decode()}
    answers = []
    for body in (
        {"instances": [text]},
        {"instances": [b64]},
        {"instances": [{"text": b64}]},
        {"inputs": {"text": [b64]}},
        {"inputs": b64},
    ):
        r = rest_client.post("/v1/models/imdb:predict", json=body)
        assert r.status_code == 200, (body, r.text)
        answers.append(np.asarray(r.json().get("predictions") or r.json()["outputs"])[0, 0])
    assert len(set(answers)) == 1
    r = rest_client.post("/v1/models/imdb:classify", json={"examples": [{"text": b64}]})
    assert r.status_code == 200 and r.json()["result"][0][1][1] == pytest.approx(answers[0])


@pytest.mark.parametrize("name", ["serving_default", "", None])
def test_the_exported_signature_name_is_accepted(rest_client, name):
    body = {"instances": ["a good movie"], **({"signature_name": name} if name is not None else {})}
    assert rest_client.post("/v1/models/imdb:predict", json=body).status_code == 200


def test_an_unknown_signature_name_is_refused_naming_the_known_ones(rest_client):
    r = rest_client.post("/v1/models/imdb:predict", json={"signature_name": "predict", "instances": ["x"]})
    assert r.status_code == 400 and "(signatures: serving_default)" in r.json()["error"]
    r = rest_client.post("/v1/models/imdb:classify", json={"signature_name": "other", "examples": [{"text": "x"}]})
    assert r.status_code == 400 and "serving_default, classification" in r.json()["error"]


def test_classify_result_shape(rest_client, fixture_root):
    """``{"result": [[[label, score], ...] per example]}`` as TF Serving's REST page documents it."""
    ref = reference(fixture_root, "reuters")
    r = rest_client.post(
        "/v1/models/reuters:classify",
        json={"signature_name": "classification", "examples": [{"text": t} for t in ref["texts"]]},
    )
    assert r.status_code == 200 and r.json().keys() == {"result"}
    result = r.json()["result"]
    assert len(result) == len(ref["texts"]) and all(len(pairs) == ref["y"].shape[1] for pairs in result)
    assert all(isinstance(label, str) and isinstance(score, float) for pairs in result for label, score in pairs)
    np.testing.assert_allclose([[s for _, s in pairs] for pairs in result], ref["y"], atol=1e-4)


def test_regress_result_shape_with_context(rest_client, fixture_root):
    """``{"result": [value per example]}``; features shared by every example may come once, in ``context``,
    and a feature may be a one-element list, as in a tf.Example."""
    ref = reference(fixture_root, "boston")
    x = ref["x"]
    shared = {"CHAS": float(x[0, 3])}
    examples = [{f: [float(v)] for f, v in zip(BOSTON, row) if f != "CHAS"} for row in x[:1]]
    r = rest_client.post("/v1/models/boston:regress", json={"context": shared, "examples": examples})
    assert r.status_code == 200 and r.json().keys() == {"result"}
    assert r.json()["result"] == pytest.approx([float(ref["y"][0, 0])], abs=1e-4)


def test_metadata_describes_the_signatures(rest_client):
    meta = rest_client.get("/v1/models/boston/metadata").json()
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert set(defs) == {"serving_default", "regression"}
    assert defs["serving_default"]["inputs"]["features"]["tensor_shape"]["dim"] == [{"size": "-1"}, {"size": "13"}]
    assert defs["serving_default"]["outputs"]["price"]["dtype"] == "DT_FLOAT"
    assert defs["regression"]["method_name"] == "tensorflow/serving/regress"
    assert "instances" in meta["modelyard"]


def test_version_and_variant_are_headers(rest_client):
    r = rest_client.post("/v1/models/imdb/versions/1:predict", json={"instances": ["good"]})
    assert r.headers["x-model-version"] == "1" and r.headers["x-model-variant"] == "onnx_fp32"


@pytest.mark.parametrize(
    "content_type, status",
    [
        (None, 200),
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("application/x-www-form-urlencoded", 200),  # curl -d, as in TF Serving's own examples
        ("application/vnd.api+json", 200),
        ("text/plain", 415),
        ("multipart/form-data; boundary=x", 415),
        ("text/html; charset=utf-8", 415),
    ],
)
def test_a_body_declared_as_not_json_is_415_before_it_is_read(rest_client, content_type, status):
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/v1/models/imdb:predict", "/v2/models/imdb/infer"):
        body = (
            b'{"instances": ["a good movie"]}'
            if path.startswith("/v1")
            else b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a good movie"]}]}'
        )
        r = rest_client.post(path, content=body, headers=headers)
        assert r.status_code == status, (path, content_type, r.text)
        if status == 415:
            assert r.json()["error"].startswith(f"Content-Type: '{content_type.split(';')[0]}' is not accepted")
