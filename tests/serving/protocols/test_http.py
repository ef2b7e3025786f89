"""What both REST protocols share (serving/protocols/http.py): JSON bodies, in process."""

from __future__ import annotations

import pytest

from serving.errors import BadRequest
from serving.protocols.http import parse_json


@pytest.mark.parametrize(
    "body, key",
    [
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"instances": [{"text": "good", "text": "bad"}]}', "text"),
        (b'{"x": [1, {"k": 1, "k": 2}]}', "k"),  # behind a list whose first item holds no object
        (b'{"a" :1,\n "a"\t:2}', "a"),
        (b'{"inputs": [{"name": "t", "name": "u"}], "id": "1"}', "name"),
    ],
)
def test_a_key_repeated_in_an_object_is_400_naming_it(body, key):
    with pytest.raises(BadRequest, match=f"the key '{key}' appears twice in one object"):
        parse_json(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "he said \\":\\" then left", "b": 1}',  # an escaped quote and a colon inside a string
        b'{"a": {"b": 1, "c": {"b": 2}}}',  # the same key in different objects
        b"[[1, 2], [3]]",
        b'{"instances": [[1.5, 2]], "signature_name": "serving_default"}',
        b'"just a string"',
        b"123",
        b"null",
        b"[]",
        b"{}",
    ],
)
def test_bodies_without_a_repeated_key_parse_as_they_are(body):
    import json

    assert parse_json(body) == json.loads(body)


def test_a_repeated_key_is_400_on_both_protocols(rest_client):
    r = rest_client.post("/v1/models/imdb:predict", content=b'{"instances": ["good"], "instances": ["bad"]}')
    assert r.status_code == 400 and "'instances' appears twice" in r.json()["error"]
    r = rest_client.post(
        "/v2/models/imdb/infer",
        content=b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["good"], "data": ["bad"]}]}',
    )
    assert r.status_code == 400 and "'data' appears twice" in r.json()["error"]
