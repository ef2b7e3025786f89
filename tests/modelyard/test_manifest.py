import json

import pytest

from modelyard.errors import RepositoryError
from modelyard.manifest import Manifest, TextPreprocessing
from tests.conftest import make_manifest


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


@pytest.mark.parametrize("edit, where", [
    (lambda d: d.pop("task"), "task"),
    (lambda d: d.update(version=0), "version"),
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d["preprocessing"].update(kind="images"), "preprocessing"),
    (lambda d: d.update(surprise=1), "surprise"),
])
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
