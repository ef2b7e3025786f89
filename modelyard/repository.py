"""The on-disk model repository, the only channel between training, export and serving.

Layout (as TF Serving and Triton)::

    <root>/<name>/<version>/manifest.json   # version: 1, 2, 3, ...
    <root>/<name>/<version>/...             # artifacts named in the manifest

A version directory is never half-written: writers build in a hidden staging directory beside it
and publish with ``rename``; readers ignore anything whose name is not a number.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import RepositoryError
from modelyard.hashing import tree_digests
from modelyard.manifest import MANIFEST_FILE, Manifest


@dataclass
class Staging:
    """A version being written. Set ``manifest`` before the ``with`` block ends, or nothing is published."""

    dir: Path
    name: str
    version: int
    manifest: Manifest | None = None


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that readers see the old content or the new, never a part."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ModelRepository:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def model_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        model_dir = self.root / name
        if not model_dir.is_dir():
            return []
        return sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit() and (p / MANIFEST_FILE).is_file())

    def resolve(self, name: str, version: int | None = None) -> int:
        """The given version if it exists, else the latest; a clear error when there is none."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.model_names()) or "none"
            raise RepositoryError(
                f"no model '{name}' in {self.root} (models there: {known}); train it first: modelyard train {name}"
            )
        if version is None:
            return versions[-1]
        if version not in versions:
            raise RepositoryError(
                f"model '{name}' has no version {version} in {self.root} (versions: {', '.join(map(str, versions))})"
            )
        return version

    def path(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def manifest(self, name: str, version: int | None = None) -> Manifest:
        return Manifest.read(self.path(name, self.resolve(name, version)) / MANIFEST_FILE)

    def verify(self, name: str, version: int) -> list[str]:
        """Files whose sha256 differs from the manifest, or that are missing or unlisted."""
        vdir = self.path(name, version)
        expected = Manifest.read(vdir / MANIFEST_FILE).files
        actual = tree_digests(vdir, exclude=(MANIFEST_FILE,))
        problems = [f"{f}: missing" for f in expected if f not in actual]
        problems += [f"{f}: sha256 mismatch" for f in expected if f in actual and actual[f] != expected[f]]
        problems += [f"{f}: not in manifest" for f in actual if f not in expected]
        return problems

    @contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        with open(model_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield model_dir

    @contextmanager
    def _staged(self, model_dir: Path, name: str, version: int, seed_from: Path | None) -> Iterator[Staging]:
        stage_dir = model_dir / f".staging-{version}-{uuid.uuid4().hex[:8]}"
        try:
            if seed_from is not None:
                shutil.copytree(seed_from, stage_dir)
            else:
                stage_dir.mkdir()
            stage = Staging(stage_dir, name, version)
            yield stage
            if stage.manifest is None:
                raise RepositoryError(f"{name}/{version}: writer set no manifest; nothing published")
            stage.manifest.files = tree_digests(stage_dir, exclude=(MANIFEST_FILE,))
            write_atomic(stage_dir / MANIFEST_FILE, stage.manifest.to_json())
        except BaseException:
            shutil.rmtree(stage_dir, ignore_errors=True)
            raise

    @contextmanager
    def new_version(self, name: str) -> Iterator[Staging]:
        """Write the next version number of ``name``; it appears whole or not at all."""
        with self._locked(name) as model_dir:
            version = (self.versions(name) or [0])[-1] + 1
            with self._staged(model_dir, name, version, seed_from=None) as stage:
                yield stage
            os.rename(stage.dir, model_dir / str(version))

    @contextmanager
    def update_version(self, name: str, version: int) -> Iterator[Staging]:
        """Add or replace artifacts of an existing version. Work happens on a copy; on success the copy
        replaces the version, on any failure the version is left exactly as it was."""
        version = self.resolve(name, version)
        with self._locked(name) as model_dir:
            target = model_dir / str(version)
            with self._staged(model_dir, name, version, seed_from=target) as stage:
                stage.manifest = Manifest.read(target / MANIFEST_FILE)
                yield stage
            retired = model_dir / f".retired-{version}-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            os.rename(stage.dir, target)
            shutil.rmtree(retired, ignore_errors=True)
