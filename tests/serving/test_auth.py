"""API keys, in process: what each scope guards, keys from a file (rotation), UTF-8 keys, public metadata."""

from __future__ import annotations

import pytest
from serving_helpers import in_process

TEXT = {"instances": ["a good movie"]}
KEY = "clé-1"
GUARDED = [
    "/v1/models/imdb",
    "/v1/models/imdb/metadata",
    "/v2/models/imdb",
    "/v2/models/imdb/ready",
    "/v2/models/imdb/config",
    "/v2/models/imdb/stats",
    "/v2",
    "/docs",
    "/openapi.json",
]


@pytest.fixture(scope="module")
def keyed(fixture_root, tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    keys = d / "keys.txt"
    keys.write_text(f"# rotation: old and new\n{KEY}\n  second-key  \n", encoding="utf-8")
    with in_process(fixture_root / "repo", api_key_file=keys, enable_admin=True) as client:
        yield client


def _key(k: str) -> dict:
    return {"X-API-Key": k.encode("utf-8")}


def test_everything_but_health_and_metrics_needs_a_key(keyed):
    for path in GUARDED:
        r = keyed.get(path)
        assert r.status_code == 401 and "API key" in r.json()["error"], path
        assert r.headers["www-authenticate"] == "Bearer"
        assert keyed.get(path, headers=_key(KEY)).status_code == 200, path
    assert keyed.post("/v2/repository/index").status_code == 401
    assert keyed.post("/admin/reload").status_code == 401
    assert keyed.post("/v1/models/imdb:predict", json=TEXT).status_code == 401
    for path in ("/v2/health/live", "/v2/health/ready", "/metrics"):
        assert keyed.get(path).status_code == 200, path


def test_every_key_of_the_file_works_and_compares_as_utf8(keyed):
    for k in (KEY, "second-key"):
        assert keyed.post("/v1/models/imdb:predict", json=TEXT, headers=_key(k)).status_code == 200
        assert (
            keyed.post(
                "/v2/models/imdb/infer",
                headers={"Authorization": b"Bearer " + k.encode()},
                json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]},
            ).status_code
            == 200
        )
    latin1 = {"X-API-Key": KEY.encode("latin-1")}  # the same characters, other bytes
    assert keyed.post("/v1/models/imdb:predict", json=TEXT, headers=latin1).status_code == 401
    assert keyed.post("/v1/models/imdb:predict", json=TEXT, headers=_key("# rotation")).status_code == 401


def test_public_metadata_opens_metadata_and_docs_only(fixture_root):
    with in_process(fixture_root / "repo", api_key="k", public_metadata=True) as client:
        for path in GUARDED:
            assert client.get(path).status_code == 200, path
        assert client.post("/v1/models/imdb:predict", json=TEXT).status_code == 401


def test_an_unreadable_key_file_is_a_clear_error(tmp_path):
    from modelyard.errors import ModelyardError
    from modelyard.settings import Settings
    from serving.auth import read_keys

    with pytest.raises(ModelyardError, match="no key in it"):
        (tmp_path / "empty").write_text("# nothing\n")
        read_keys(Settings(api_key_file=tmp_path / "empty"))
    with pytest.raises(ModelyardError, match="cannot read it"):
        read_keys(Settings(api_key_file=tmp_path / "missing"))
