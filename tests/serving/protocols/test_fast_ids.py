"""serving.protocols.fast_ids: token-id instances read in one step, only when the general reader would read the body
the same way; every other body is left to the general reader, whose answers (and errors) stay as they were."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from serving.protocols import fast_ids

READ = [
    b'{"instances":[{"ids":[1,14,22]}]}',
    b'{"instances":[{"ids":[1,2]},{"ids":[3]},{"ids":[]}]}',
    b' {"instances" : [ {"ids" : [ 1 , 99999 ] } ] } ',
    b'{"instances":[{"ids":[18446744073709551615]}]}',
]

LEFT = [
    b'{"instances":[{"ids":[1,true]}]}',
    b'{"instances":[{"ids":[1,2.0]}]}',
    b'{"instances":[{"ids":[1,null]}]}',
    b'{"instances":[{"ids":[1,"2"]}]}',
    b'{"instances":[{"ids":[-1]}]}',
    b'{"instances":[{"ids":[18446744073709551616]}]}',
    b'{"instances":[{"ids":[-9223372036854775809]}]}',
    b'{"instances":[{"ids":[1e400]}]}',
    b'{"\\ud914\\udfc3": 2.0, "instances": [{"ids": [1]}]}',
    b'{"\\ud914": 1}',
    b'{"instances":[{"ids":[1]}]}\xff',
    b'{"instances":[{"ids":[[1]]}]}',
    b'{"instances":[{"ids":[1,{"a":2}]}]}',
    b'{"instances":[{"ids":[1]}],"instances":[{"ids":[2]}]}',
    b'{"instances":[{"ids":[1],"ids":[2]}]}',
    b'{"instances":[{"ids":[1]}],"signature_name":"serving_default"}',
    b'{"instances":[{"ids":[1],"text":"a"}]}',
    b'{"instances":[]}',
    b'{"instances":{"ids":[1]}}',
    b'{"instances":[{"ids":"12"}]}',
    b'{"instances":["a [good] {movie}"]}',
    b'{"inputs":{"ids":[[1]]}}',
    b'[{"ids":[1]}]',
    b'{"instances":[{"ids":[1]}]}x',
    b"{",
    b"",
]


@pytest.mark.parametrize("body", READ)
def test_what_it_reads_is_what_the_general_reader_reads(body):
    rows = fast_ids.id_rows(body, 1000)
    expected = [np.array(i["ids"], np.uint64) for i in json.loads(body)["instances"]]
    assert rows is not None and len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert got.dtype == np.uint64 and got.flags.writeable
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("body", LEFT)
def test_any_other_body_is_left_to_the_general_reader(body):
    assert fast_ids.id_rows(body, 1000) is None


def test_more_instances_than_allowed_are_left_to_the_general_reader():
    body = orjson.dumps({"instances": [{"ids": [1]}] * 3})
    assert fast_ids.id_rows(body, 3) is not None and fast_ids.id_rows(body, 2) is None


def test_served_answers_and_errors_are_those_of_the_general_reader(rest_client):
    """The same ids read in one step and, with a signature_name the one-step reader leaves alone, the general way."""
    ids = [[1, *range(4, 40)], [1, 14, 22, 16, 43, 530, 9999, 12345]]
    fast = rest_client.post("/v1/models/imdb:predict", json={"instances": [{"ids": i} for i in ids]})
    general = rest_client.post(
        "/v1/models/imdb:predict",
        json={"instances": [{"ids": i} for i in ids], "signature_name": "serving_default"},
    )
    assert fast.status_code == general.status_code == 200
    assert fast.json() == general.json() and np.asarray(fast.json()["predictions"]).shape == (2, 1)
    r = rest_client.post("/v1/models/imdb:predict", json={"instances": [{"ids": [1, -3]}]})
    assert r.status_code == 400 and "non-negative" in r.json()["error"]
    r = rest_client.post("/v1/models/boston:predict", json={"instances": [{"ids": [1, 2]}]})
    assert r.status_code == 400 and "instances" in r.json()["error"]


def test_after_any_refusal_the_next_body_is_read():
    for body in LEFT:
        assert fast_ids.id_rows(body, 1000) is None
        assert fast_ids.id_rows(READ[0], 1000) is not None
