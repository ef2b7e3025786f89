import pytest

from modelyard.errors import RepositoryError
from modelyard.hashing import tree_digests
from modelyard.repository import ModelRepository
from tests.manifests import make_manifest


def publish(repo: ModelRepository, name: str = "boston", payload: bytes = b"weights") -> int:
    with repo.new_version(name) as stage:
        (stage.dir / "model.bin").write_bytes(payload)
        stage.manifest = make_manifest(name, stage.version)
    return stage.version


def test_versions_are_numbered_and_hashed(repo_dir):
    repo = ModelRepository(repo_dir)
    assert [publish(repo), publish(repo)] == [1, 2]
    assert repo.versions("boston") == [1, 2]
    assert repo.resolve("boston") == 2
    m = repo.manifest("boston", 1)
    assert m.version == 1 and set(m.files) == {"model.bin"}
    assert repo.verify("boston", 1) == []


def test_failed_write_publishes_nothing(repo_dir):
    repo = ModelRepository(repo_dir)
    publish(repo)
    with pytest.raises(RuntimeError):
        with repo.new_version("boston") as stage:
            (stage.dir / "model.bin").write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert repo.versions("boston") == [1]
    assert [p.name for p in (repo_dir / "boston").iterdir() if not p.name.startswith(".lock")] == ["1"]


def test_writer_without_manifest_publishes_nothing(repo_dir):
    repo = ModelRepository(repo_dir)
    with pytest.raises(RepositoryError, match="no manifest"):
        with repo.new_version("boston") as stage:
            (stage.dir / "model.bin").write_bytes(b"x")
    assert repo.versions("boston") == []


def test_staging_directories_are_invisible_to_readers(repo_dir):
    repo = ModelRepository(repo_dir)
    with repo.new_version("boston") as stage:
        (stage.dir / "model.bin").write_bytes(b"x")
        stage.manifest = make_manifest("boston", stage.version)
        assert repo.versions("boston") == []
    assert repo.versions("boston") == [1]


def test_update_failure_leaves_version_byte_identical(repo_dir):
    repo = ModelRepository(repo_dir)
    publish(repo)
    before = tree_digests(repo.path("boston", 1))
    with pytest.raises(ValueError):
        with repo.update_version("boston", 1) as stage:
            (stage.dir / "model.bin").write_bytes(b"changed")
            raise ValueError("conversion failed")
    assert tree_digests(repo.path("boston", 1)) == before


def test_update_adds_files_and_rehashes(repo_dir):
    repo = ModelRepository(repo_dir)
    publish(repo)
    with repo.update_version("boston", 1) as stage:
        (stage.dir / "onnx").mkdir()
        (stage.dir / "onnx" / "fp32.onnx").write_bytes(b"onnx")
    assert set(repo.manifest("boston", 1).files) == {"model.bin", "onnx/fp32.onnx"}
    assert repo.verify("boston", 1) == []


def test_verify_reports_tampering(repo_dir):
    repo = ModelRepository(repo_dir)
    publish(repo)
    (repo.path("boston", 1) / "model.bin").write_bytes(b"tampered")
    (repo.path("boston", 1) / "extra.txt").write_text("?")
    assert repo.verify("boston", 1) == ["model.bin: sha256 mismatch", "extra.txt: not in manifest"]


def test_unknown_model_and_version_errors(repo_dir):
    repo = ModelRepository(repo_dir)
    publish(repo)
    with pytest.raises(RepositoryError, match="no model 'imdb'.*models there: boston"):
        repo.resolve("imdb")
    with pytest.raises(RepositoryError, match="no version 7.*versions: 1"):
        repo.resolve("boston", 7)
