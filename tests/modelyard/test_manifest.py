import hashlib
import json

import pytest

from modelyard.errors import RepositoryError
from modelyard.manifest import Manifest, TextPreprocessing
from tests.manifests import make_manifest


def test_round_trip(tmp_path):
    m = make_manifest()
    m.files = {"model.keras": "ab" * 32}
    path = tmp_path / "manifest.json"
    path.write_text(m.to_json())
    assert Manifest.read(path) == m
    assert json.loads(path.read_text())["schema_version"] == 1


def test_preprocessing_kind_selects_schema(tmp_path):
    m = make_manifest().model_copy(update={"preprocessing": TextPreprocessing(vocab_file="vocab.json", num_words=100)})
    path = tmp_path / "manifest.json"
    path.write_text(m.to_json())
    assert isinstance(Manifest.read(path).preprocessing, TextPreprocessing)


@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda d: d.pop("task"), "task"),
        (lambda d: d.update(version=0), "version"),
        (lambda d: d.update(schema_version=2), "schema_version"),
        (lambda d: d["preprocessing"].update(kind="images"), "preprocessing"),
        (lambda d: d.update(surprise=1), "surprise"),
    ],
)
def test_invalid_manifest_names_the_field(tmp_path, edit, where):
    data = json.loads(make_manifest().to_json())
    edit(data)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RepositoryError, match=f"invalid manifest at {where}"):
        Manifest.read(path)


def test_unparseable_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(RepositoryError, match="invalid manifest"):
        Manifest.read(path)


def _text_version(root, name: str, vocab: dict) -> tuple[Manifest, object]:
    vdir = root / name
    vdir.mkdir()
    (vdir / "vocab.json").write_text(json.dumps(vocab))
    m = make_manifest().model_copy(
        update={
            "preprocessing": TextPreprocessing(vocab_file="vocab.json", num_words=100),
            "files": {"vocab.json": hashlib.sha256((vdir / "vocab.json").read_bytes()).hexdigest()},
        }
    )
    return m, vdir


def test_versions_with_one_vocabulary_share_its_encoder(tmp_path):
    """A hot reload must not parse the vocabulary again (its small objects fragmented the server's heap)."""
    (m1, d1), (m2, d2) = (_text_version(tmp_path, n, {"good": 1, "bad": 2}) for n in ("1", "2"))
    m3, d3 = _text_version(tmp_path, "3", {"good": 2, "bad": 1})
    e1 = m1.text_encoder(d1)
    assert m2.text_encoder(d2) is e1
    e3 = m3.text_encoder(d3)
    assert e3 is not e1 and e3.ids("good") == [1, 2 + 3] and e1.ids("good") == [1, 1 + 3]
